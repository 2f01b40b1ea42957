package password

import (
	"errors"
	"fmt"
)

// Params are argon2id's cost parameters and sizes.
type Params struct {
	Memory  uint32 // memory in KiB: at least 19456 (19 MiB), at most 262144 (256 MiB)
	Time    uint32 // passes over the memory: 2 to 16
	Threads uint8  // lanes: 1 to 16
	SaltLen uint32 // random salt in bytes: 16 to 64
	KeyLen  uint32 // derived key in bytes: 32 to 64
}

// DefaultParams are the OWASP Password Storage Cheat Sheet's argon2id
// parameters (m=19 MiB, t=2, p=1) with a 16-byte salt and a 32-byte key:
// the least a Hasher accepts (PW-03).
var DefaultParams = Params{Memory: minMemory, Time: minTime, Threads: minThreads, SaltLen: minSaltLen, KeyLen: minKeyLen}

// The least a Hasher accepts (PW-03). They are constants, not read from
// DefaultParams, so that changing that variable can't lower them.
const (
	minMemory  = 19 * 1024 // KiB
	minTime    = 2
	minThreads = 1
	minSaltLen = 16
	minKeyLen  = 32
)

// The most a Hasher or a stored hash may ask for: they bound the memory and
// time of one hash, whatever a corrupted or hostile stored string says
// (PW-04).
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16
	maxSaltLen = 64
	maxKeyLen  = 64
)

// withDefaults replaces each zero field with DefaultParams' value.
func (p Params) withDefaults() Params {
	if p.Memory == 0 {
		p.Memory = DefaultParams.Memory
	}
	if p.Time == 0 {
		p.Time = DefaultParams.Time
	}
	if p.Threads == 0 {
		p.Threads = DefaultParams.Threads
	}
	if p.SaltLen == 0 {
		p.SaltLen = DefaultParams.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = DefaultParams.KeyLen
	}
	return p
}

// validate reports every field outside what a Hasher accepts.
func (p Params) validate() error {
	return errors.Join(
		checkRange("Memory", p.Memory, minMemory, maxMemory),
		checkRange("Time", p.Time, minTime, maxTime),
		checkRange("Threads", uint32(p.Threads), minThreads, maxThreads),
		checkRange("SaltLen", p.SaltLen, minSaltLen, maxSaltLen),
		checkRange("KeyLen", p.KeyLen, minKeyLen, maxKeyLen),
	)
}

// checkRange says what is wrong when v is outside lo..hi.
func checkRange(name string, v, lo, hi uint32) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s=%d is outside %d..%d", name, v, lo, hi)
	}
	return nil
}

// weakerThan reports whether any parameter of p is below want's.
func (p Params) weakerThan(want Params) bool {
	return p.Memory < want.Memory || p.Time < want.Time || p.Threads < want.Threads ||
		p.SaltLen < want.SaltLen || p.KeyLen < want.KeyLen
}

// NeedsRehash reports whether the stored hash encoded should be replaced by
// a new hash made with p (PW-03): when any of its memory, time, threads, salt
// length or key length is below p's, or it is not an argon2id v=19 PHC string
// this package can parse (another version, another algorithm, corrupted).
// Zero fields of p mean DefaultParams' values. Verify already reports this on
// a successful sign-in; NeedsRehash serves batch checks.
func NeedsRehash(encoded string, p Params) bool {
	stored, err := parsePHC(encoded)
	return err != nil || stored.params.weakerThan(p.withDefaults())
}
