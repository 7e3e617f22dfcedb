package message

import guildhall "github.com/guildhall/guildhall"

// MaxCachedSize is the largest message a Cache takes, in CachedSize
// bytes: well above what Send accepts (MaxContent characters of at most 4
// bytes, a MaxNonce nonce), so only a bug or a hostile caller hits it.
const MaxCachedSize = 64 << 10

// CachedSize estimates the bytes a cached message holds: its strings,
// mention IDs and a fixed overhead for the other fields.
func CachedSize(m Message) int {
	return 128 + len(m.Content) + len(m.Nonce) + 8*(len(m.Mentions.Users)+len(m.Mentions.Roles))
}

// CheckCached validates a message given to Cache.Add or Cache.Replace:
// Invalid without an ID or channel, TooLarge over MaxCachedSize. Cache
// implementations call it first, so a refused call changes nothing.
func CheckCached(op string, m Message) error {
	if m.ID == 0 || m.ChannelID == 0 {
		return guildhall.E(op, guildhall.Invalid, "a cached message needs an ID and a channel")
	}
	if CachedSize(m) > MaxCachedSize {
		return guildhall.E(op, guildhall.TooLarge, "message too large to cache (%d bytes, at most %d)", CachedSize(m), MaxCachedSize)
	}
	return nil
}

// CheckFill validates the arguments of Cache.Fill: a channel, and
// messages of that channel, each valid for CheckCached, strictly newest
// first.
func CheckFill(op string, channelID uint64, msgs []Message) error {
	if channelID == 0 {
		return guildhall.E(op, guildhall.Invalid, "no channel")
	}
	for i, m := range msgs {
		if err := CheckCached(op, m); err != nil {
			return err
		}
		if m.ChannelID != channelID {
			return guildhall.E(op, guildhall.Invalid, "message %d is in channel %d, not %d", m.ID, m.ChannelID, channelID)
		}
		if i > 0 && m.ID >= msgs[i-1].ID {
			return guildhall.E(op, guildhall.Invalid, "messages must be newest first, without duplicates")
		}
	}
	return nil
}

// CheckLimit validates the limit of Cache.Latest.
func CheckLimit(op string, limit int) error {
	if limit < 1 {
		return guildhall.E(op, guildhall.Invalid, "limit must be at least 1")
	}
	return nil
}

// CheckChannel validates the channel ID of Cache.Remove, Latest and
// Invalidate.
func CheckChannel(op string, channelID uint64) error {
	if channelID == 0 {
		return guildhall.E(op, guildhall.Invalid, "no channel")
	}
	return nil
}
