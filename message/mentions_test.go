package message_test

import (
	"reflect"
	"testing"

	"github.com/guildhall/guildhall/message"
)

func TestParseMentions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want message.Mentions
	}{
		{"hello", message.Mentions{}},
		{"hi <@12> and <@!7> and <@12>", message.Mentions{Users: []uint64{7, 12}}},
		{"<@&5> <@&3>", message.Mentions{Roles: []uint64{3, 5}}},
		{"@everyone look", message.Mentions{Everyone: true}},
		{"@here", message.Mentions{Everyone: true}},
		{"<@> <@x> <@0> <@&> <@123456789012345678901234> <@12", message.Mentions{}},
		{"<@<@9>", message.Mentions{Users: []uint64{9}}},
	} {
		if got := message.ParseMentions(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseMentions(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseMentions(f *testing.F) {
	f.Add("<@1> <@&2> @everyone")
	f.Fuzz(func(t *testing.T, s string) {
		m := message.ParseMentions(s)
		for _, id := range append(m.Users, m.Roles...) {
			if id == 0 {
				t.Fatalf("zero id from %q", s)
			}
		}
	})
}
