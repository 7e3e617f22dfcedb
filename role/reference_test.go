package role_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/guildhall/guildhall/role"
)

// reference computes channel permissions one bit at a time, written straight
// from the rules in doc.go with no cleverness, to check Compute against.
func reference(in role.Input) role.Permissions {
	isOwner := in.OwnerID != 0 && in.UserID == in.OwnerID
	if isOwner {
		return role.All
	}
	if in.Everyone&role.Administrator != 0 {
		return role.All
	}
	for _, r := range in.Roles {
		if r.Permissions&role.Administrator != 0 {
			return role.All
		}
	}
	holds := func(id uint64) bool {
		if id == in.ServerID {
			return false
		}
		for _, r := range in.Roles {
			if r.ID == id {
				return true
			}
		}
		return false
	}

	var out role.Permissions
	for i := range 64 {
		bit := role.Permissions(1) << i
		if role.All&bit == 0 {
			continue
		}
		// An overwrite never grants Administrator.
		canAllow := bit != role.Administrator

		// Base: @everyone or any role.
		has := in.Everyone&bit != 0
		for _, r := range in.Roles {
			if r.Permissions&bit != 0 {
				has = true
			}
		}

		// @everyone overwrite.
		denied, allowed := false, false
		for _, o := range in.Overwrites {
			if o.Type == role.OverwriteRole && o.ID == in.ServerID {
				denied = denied || o.Deny&bit != 0
				allowed = allowed || o.Allow&bit != 0
			}
		}
		if denied {
			has = false
		}
		if allowed && canAllow {
			has = true
		}

		// Role overwrites: any deny, then any allow.
		denied, allowed = false, false
		for _, o := range in.Overwrites {
			if o.Type == role.OverwriteRole && holds(o.ID) {
				denied = denied || o.Deny&bit != 0
				allowed = allowed || o.Allow&bit != 0
			}
		}
		if denied {
			has = false
		}
		if allowed && canAllow {
			has = true
		}

		// Member overwrite.
		denied, allowed = false, false
		for _, o := range in.Overwrites {
			if o.Type == role.OverwriteMember && o.ID == in.UserID {
				denied = denied || o.Deny&bit != 0
				allowed = allowed || o.Allow&bit != 0
			}
		}
		if denied {
			has = false
		}
		if allowed && canAllow {
			has = true
		}

		if has {
			out |= bit
		}
	}

	// Implicit rules.
	if out&role.ViewChannel == 0 {
		return 0
	}
	if out&role.SendMessages == 0 {
		out &^= role.MentionEveryone
		out &^= role.EmbedLinks
		out &^= role.AttachFiles
	}
	return out
}

// ids are the IDs random inputs draw from: few, so that roles, overwrites,
// the server, the owner and the user collide often.
var ids = [...]uint64{server, owner, user, other, roleA, roleB, roleC, roleX}

// randPerms returns a permission set biased towards few bits, mostly known
// ones, and rarely Administrator (which would make the result All).
func randPerms(r *rand.Rand) role.Permissions {
	p := role.Permissions(r.Uint64()&r.Uint64()) &^ role.Administrator
	if r.IntN(8) != 0 {
		p &= role.All
	}
	if r.IntN(40) == 0 {
		p |= role.Administrator
	}
	return p
}

func randInput(r *rand.Rand) role.Input {
	in := role.Input{
		ServerID: server,
		OwnerID:  []uint64{0, owner, owner, owner}[r.IntN(4)],
		UserID:   ids[r.IntN(len(ids))],
		Everyone: randPerms(r),
	}
	if r.IntN(3) != 0 {
		in.UserID = user
	}
	for range r.IntN(6) {
		in.Roles = append(in.Roles, role.Role{ID: ids[r.IntN(len(ids))], Position: r.IntN(5), Permissions: randPerms(r)})
	}
	for range r.IntN(12) {
		in.Overwrites = append(in.Overwrites, role.Overwrite{
			ID:    ids[r.IntN(len(ids))],
			Type:  role.OverwriteType(r.IntN(5) / 2), // role, member, sometimes unknown
			Allow: randPerms(r),
			Deny:  randPerms(r),
		})
	}
	return in
}

// check asserts what must hold for any input: Compute agrees with the
// reference and Explain agrees with Compute.
func check(t *testing.T, in role.Input, p role.Permissions) {
	t.Helper()
	got, want := role.Compute(in), reference(in)
	if got != want {
		t.Fatalf("Compute = %v (%v), reference = %v (%v)\ninput: %+v", got, got.Names(), want, want.Names(), in)
	}
	if !role.All.Has(got) {
		t.Fatalf("Compute = %v has bits outside All\ninput: %+v", got, in)
	}
	if base := role.Base(in); !role.All.Has(base) {
		t.Fatalf("Base = %v has bits outside All\ninput: %+v", base, in)
	}
	checkExplain(t, in, p, got)
	// And for every single known bit.
	for q := role.All; q != 0; q &= q - 1 {
		checkExplain(t, in, q&-q, got)
	}
}

// order ranks the sources of explanation steps in the order they apply.
var order = map[string]int{
	role.SourceOwner:             0,
	role.SourceEveryoneRole:      1,
	role.SourceRole:              2,
	role.SourceAdministrator:     3,
	role.SourceEveryoneOverwrite: 4,
	role.SourceRoleOverwrites:    5,
	role.SourceMemberOverwrite:   6,
	role.SourceNoViewChannel:     7,
	role.SourceNoSendMessages:    8,
}

func checkExplain(t *testing.T, in role.Input, p, computed role.Permissions) {
	t.Helper()
	e := role.Explain(in, p)
	if e.Allowed != computed.Has(p) {
		t.Fatalf("Explain(%v).Allowed = %v, Compute(in).Has = %v\nexplanation: %+v\ninput: %+v", p, e.Allowed, computed.Has(p), e, in)
	}
	if e.Steps == nil {
		t.Fatalf("Explain(%v).Steps is nil", p)
	}
	// Steps not listed do not touch p, so the last step's outcome is the
	// final one, and with no steps only the empty set is held.
	if n := len(e.Steps); n > 0 && e.Steps[n-1].Has != e.Allowed {
		t.Fatalf("Explain(%v): last step has %v, Allowed %v\nexplanation: %+v\ninput: %+v", p, e.Steps[n-1].Has, e.Allowed, e, in)
	}
	if len(e.Steps) == 0 && e.Allowed != (p == 0) {
		t.Fatalf("Explain(%v): no steps but Allowed = %v\ninput: %+v", p, e.Allowed, in)
	}
	last := -1
	for _, s := range e.Steps {
		rank, ok := order[s.Source]
		if !ok || rank < last || (rank == last && s.Source != role.SourceRole) {
			t.Fatalf("Explain(%v): step %q out of order\nexplanation: %+v", p, s.Source, e)
		}
		last = rank
		if !s.Allow && !s.Deny {
			t.Fatalf("Explain(%v): step %q neither allows nor denies\nexplanation: %+v", p, s.Source, e)
		}
		if (s.Source == role.SourceRoleOverwrites) != (len(s.Roles) > 0) {
			t.Fatalf("Explain(%v): step %q with roles %v\nexplanation: %+v", p, s.Source, s.Roles, e)
		}
	}
}

// TestComputeMatchesReference checks Compute and Explain on many random
// inputs.
func TestComputeMatchesReference(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 5_000
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for range n {
		check(t, randInput(r), randPerms(r))
	}
}

// decodeInput turns fuzz arguments into an Input: ownerSel picks no owner or
// owner, userSel the user from ids. Each 10-byte record of data is
// a role or an overwrite: a kind byte, an ID byte (an index into ids) and
// two 32-bit permission sets (bits above 31 are never needed: All ends at
// bit 28).
func decodeInput(ownerSel, userSel uint8, everyone uint32, data []byte) role.Input {
	in := role.Input{
		ServerID: server,
		OwnerID:  []uint64{0, owner}[ownerSel%2],
		UserID:   ids[userSel%uint8(len(ids))],
		Everyone: role.Permissions(everyone),
	}
	for len(data) >= 10 && len(in.Roles)+len(in.Overwrites) < 64 {
		kind, id := data[0], ids[data[1]%uint8(len(ids))]
		a := role.Permissions(binary.LittleEndian.Uint32(data[2:]))
		b := role.Permissions(binary.LittleEndian.Uint32(data[6:]))
		data = data[10:]
		switch kind % 4 {
		case 0:
			in.Roles = append(in.Roles, role.Role{ID: id, Position: int(int8(kind)), Permissions: a})
		case 1:
			in.Overwrites = append(in.Overwrites, role.Overwrite{ID: id, Type: role.OverwriteRole, Allow: a, Deny: b})
		case 2:
			in.Overwrites = append(in.Overwrites, role.Overwrite{ID: id, Type: role.OverwriteMember, Allow: a, Deny: b})
		case 3:
			in.Overwrites = append(in.Overwrites, role.Overwrite{ID: id, Type: role.OverwriteType(kind >> 2), Allow: a, Deny: b})
		}
	}
	return in
}

func record(kind byte, idIndex byte, a, b role.Permissions) []byte {
	out := []byte{kind, idIndex}
	out = binary.LittleEndian.AppendUint32(out, uint32(a))
	return binary.LittleEndian.AppendUint32(out, uint32(b))
}

func FuzzCompute(f *testing.F) {
	// Indexes into ids.
	const iServer, iUser, iOther, iA, iB, iX = 0, 2, 3, 4, 5, 7
	concat := func(rs ...[]byte) []byte {
		var out []byte
		for _, r := range rs {
			out = append(out, r...)
		}
		return out
	}
	f.Add(uint8(0), uint8(iUser), uint32(role.DefaultEveryone), uint64(send), []byte(nil))
	f.Add(uint8(1), uint8(1), uint32(0), uint64(role.Administrator), []byte(nil)) // the owner
	f.Add(uint8(1), uint8(iUser), uint32(role.DefaultEveryone), uint64(view), concat(
		record(4, iA, role.Administrator, 0),
		record(1, iServer, 0, role.All),
	))
	f.Add(uint8(1), uint8(iUser), uint32(role.DefaultEveryone|mention), uint64(mention|view), concat(
		record(4, iA, manage, 0),
		record(8, iB, 0, 0),
		record(1, iServer, 0, send),
		record(1, iA, 0, view),
		record(1, iB, view, 0),
		record(1, iX, 0, role.All),
		record(2, iUser, send, manage),
		record(2, iOther, 0, role.All),
		record(7, iUser, 0, role.All),
	))
	f.Fuzz(func(t *testing.T, ownerSel, userSel uint8, everyone uint32, p uint64, data []byte) {
		check(t, decodeInput(ownerSel, userSel, everyone, data), role.Permissions(p))
	})
}
