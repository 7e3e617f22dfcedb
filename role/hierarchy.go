package role

// HighestPosition returns the highest position among roles, or 0 (the
// position of @everyone) if there are none.
func HighestPosition(roles []Role) int {
	highest := 0
	for i := range roles {
		highest = max(highest, roles[i].Position)
	}
	return highest
}

// CanManageRole reports whether actor may edit, assign, unassign or delete
// the target role: the owner always may; anyone else needs ManageRoles (or
// Administrator) at server level and a highest role strictly above the
// target. Administrators are bound by the hierarchy too; the owner is not.
// The @everyone role (position 0) is thus editable by anyone with
// ManageRoles and a role; whether it may be assigned or deleted at all is
// for the caller to decide.
func CanManageRole(actor Input, target Role) bool {
	if actor.isOwner() {
		return true
	}
	return Base(actor).Has(ManageRoles) && HighestPosition(actor.Roles) > target.Position
}

// CanGrant reports whether actor may put the permissions p on a role or an
// overwrite: only permissions the actor has at server level can be granted
// (the owner and administrators have them all). Combine with CanManageRole.
func CanGrant(actor Input, p Permissions) bool {
	return Base(actor).Has(p)
}

// CanModerate reports whether actor may kick, ban or rename the member
// targetUserID, who has targetRoles (not including @everyone): never
// the owner; otherwise the owner may moderate anyone, and anyone else only
// members whose highest role is strictly below the actor's. So nobody
// can moderate themselves, and equal positions block each other.
// It checks the hierarchy only: the caller checks the permission itself
// (KickMembers, BanMembers, ManageNicknames) with Base.
func CanModerate(actor Input, targetUserID uint64, targetRoles []Role) bool {
	if actor.OwnerID != 0 && targetUserID == actor.OwnerID {
		return false
	}
	if actor.isOwner() {
		return true
	}
	return HighestPosition(actor.Roles) > HighestPosition(targetRoles)
}
