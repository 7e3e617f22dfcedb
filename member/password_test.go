package member

import (
	"fmt"
	"strings"
	"testing"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	p := PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	phc, err := hashPassword("correct horse", p)
	if err != nil {
		t.Fatalf("hashPassword: %v", err)
	}
	parts := strings.Split(string(phc), "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v=19" || parts[3] != "m=64,t=1,p=1" {
		t.Fatalf("hashPassword = %q, not a PHC argon2id string with the given parameters", phc)
	}
	if !checkPassword(phc, "correct horse") {
		t.Error("checkPassword rejects the right password")
	}
	for _, wrong := range []string{"", "correct horsE", "correct horse ", "correct hors"} {
		if checkPassword(phc, wrong) {
			t.Errorf("checkPassword accepts %q", wrong)
		}
	}

	// Two hashes of one password differ (random salt) and both check.
	again, err := hashPassword("correct horse", p)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) == string(phc) {
		t.Error("two hashes of one password are equal: no salt?")
	}
	if !checkPassword(again, "correct horse") {
		t.Error("checkPassword rejects the second hash")
	}

	// The parameters come from the string, not from today's defaults.
	other, err := hashPassword("correct horse", PasswordParams{MemoryKiB: 128, Time: 2, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !checkPassword(other, "correct horse") {
		t.Error("checkPassword rejects a hash made with other parameters")
	}
}

func TestCheckPasswordTampered(t *testing.T) {
	p := PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	phc, err := hashPassword("correct horse", p)
	if err != nil {
		t.Fatalf("hashPassword: %v", err)
	}
	parts := strings.Split(string(phc), "$")
	with := func(i int, v string) string {
		c := append([]string(nil), parts...)
		c[i] = v
		return strings.Join(c, "$")
	}
	flip := func(s string) string { // change one base64 character
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	tampered := map[string]string{
		"empty":             "",
		"garbage":           "not a hash",
		"argon2i":           with(1, "argon2i"),
		"argon2d":           with(1, "argon2d"),
		"version 16":        with(2, "v=16"),
		"no version":        with(2, ""),
		"other memory":      with(3, "m=128,t=1,p=1"),
		"other time":        with(3, "m=64,t=2,p=1"),
		"other threads":     with(3, "m=64,t=1,p=2"),
		"zero time":         with(3, "m=64,t=0,p=1"),
		"zero threads":      with(3, "m=64,t=1,p=0"),
		"threads overflow":  with(3, "m=64,t=1,p=256"),
		"negative memory":   with(3, "m=-64,t=1,p=1"),
		"params garbage":    with(3, "x"),
		"params trailing":   with(3, "m=64,t=1,p=1,x"),
		"version trailing":  with(2, "v=19x"),
		"salt changed":      with(4, flip(parts[4])),
		"salt not base64":   with(4, "!!!!"),
		"salt padded":       with(4, parts[4]+"=="),
		"key changed":       with(5, flip(parts[5])),
		"key truncated":     with(5, parts[5][:len(parts[5])-4]),
		"key empty":         with(5, ""),
		"key not base64":    with(5, "????"),
		"extra field":       string(phc) + "$x",
		"missing field":     strings.Join(parts[:5], "$"),
		"leading text":      "x" + string(phc),
		"upper-case scheme": with(1, "ARGON2ID"),
	}
	for name, s := range tampered {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("checkPassword(%q) panics: %v", s, r)
				}
			}()
			if checkPassword([]byte(s), "correct horse") {
				t.Errorf("checkPassword(%q) accepts the password", s)
			}
		})
	}
	if !checkPassword(phc, "correct horse") {
		t.Error("checkPassword rejects the untouched hash")
	}
}

func ExamplePasswordParams() {
	var p PasswordParams
	fmt.Printf("%+v\n", p.withDefaults())
	// Output: {MemoryKiB:19456 Time:2 Threads:1}
}
