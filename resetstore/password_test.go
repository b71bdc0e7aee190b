package resetstore

import (
	"strings"
	"testing"
)

func TestHashPassword(t *testing.T) {
	p := HashParams{Time: 1, MemoryKiB: 64, Threads: 2, SaltLen: 8, KeyLen: 16}
	h, err := HashPassword("pässword", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=2$") {
		t.Errorf("hash = %q, want PHC argon2id prefix", h)
	}
	got, salt, key, err := decodeHash(h)
	if err != nil || got != p || len(salt) != 8 || len(key) != 16 {
		t.Errorf("decodeHash = %+v, %d-byte salt, %d-byte key, %v; want %+v", got, len(salt), len(key), err, p)
	}
	h2, _ := HashPassword("pässword", p)
	if h == h2 {
		t.Error("two hashes of one password are equal: salt not random")
	}
	for _, tt := range []struct {
		password string
		want     bool
	}{{"pässword", true}, {"password", false}, {"", false}, {"pässword ", false}} {
		if ok, err := checkPassword(h, tt.password); ok != tt.want || err != nil {
			t.Errorf("checkPassword(%q) = %v, %v; want %v", tt.password, ok, err, tt.want)
		}
	}
}

func TestHashParamsDefaults(t *testing.T) {
	got := HashParams{}.withDefaults()
	want := HashParams{Time: 2, MemoryKiB: 19456, Threads: 1, SaltLen: 16, KeyLen: 32}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	if got := (HashParams{Time: 3}).withDefaults(); got.Time != 3 || got.MemoryKiB != 19456 {
		t.Errorf("partial params = %+v, want Time 3 and default memory", got)
	}
}

func TestDecodeHashRejects(t *testing.T) {
	good, _ := HashPassword("x", HashParams{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32})
	parts := strings.Split(good, "$")
	tests := []string{
		"",
		"plain",
		"$argon2i$" + strings.Join(parts[2:], "$"),
		"$argon2id$v=16$" + strings.Join(parts[3:], "$"),
		"$argon2id$v=19$m=0,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=99999999,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=0,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=300$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$!!$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$",
		good + "$extra",
	}
	for _, h := range tests {
		if _, err := checkPassword(h, "x"); err == nil {
			t.Errorf("checkPassword(%q) accepted a malformed hash", h)
		}
	}
	if ok, err := checkPassword(good, "x"); !ok || err != nil {
		t.Errorf("checkPassword(good) = %v, %v", ok, err)
	}
}

func TestDummyHashUsesCurrentParams(t *testing.T) {
	p := HashParams{Time: 1, MemoryKiB: 128, Threads: 1}
	s, err := Open(t.TempDir()+"/latch.db", Options{Hash: p})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, _, _, err := decodeHash(s.dummyHash())
	if want := p.withDefaults(); err != nil || got != want {
		t.Errorf("dummy hash params = %+v, %v; want %+v", got, err, want)
	}
}
