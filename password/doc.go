// Package password hashes and checks people's passwords: argon2id in PHC
// string form, with bounded concurrency, a dummy verification for unknown
// users, and a policy for choosing new passwords.
//
//	h, err := password.NewHasher(password.HasherConfig{}) // OWASP parameters, NumCPU slots
//	if err != nil { ... }
//
//	// Registration or password change.
//	policy := password.Policy{MinLength: 15}
//	if err := policy.Check(pw, user.Name); err != nil {
//		// ErrTooShort, ErrTooLong, ErrInvalidUTF8, ErrBlank, ErrRepeated,
//		// ErrMatchesUsername or ErrCommon: err.Error() tells the user
//		// what to do.
//	}
//	encoded, err := h.Hash(ctx, pw) // $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
//	// Sign-in.
//	if user == nil {
//		err = h.VerifyDummy(ctx, pw) // same cost as a real Verify (PW-05)
//		... // answer exactly as for a wrong password
//	}
//	ok, needsRehash, err := h.Verify(ctx, pw, user.PasswordHash)
//	switch {
//	case errors.Is(err, password.ErrBusy): // answer 503
//	case err != nil: // ErrTooLong, ErrInvalidUTF8, ErrMalformedHash: a failed sign-in
//	case !ok: // wrong password
//	case needsRehash: // store h.Hash(ctx, pw) in place of the old hash (PW-03, PW-09)
//	}
//
// # Security
//
// The rules are those of docs/security.md in the repository:
//
//   - PW-01: Policy asks for at least 8 Unicode code points (MinLength; 15
//     is recommended) and allows up to 1024 bytes (MaxLength, at least 64).
//     It has no composition rules, allows every character, and neither
//     trims nor folds case: a password is compared exactly as typed, up
//     to Unicode normalisation (PW-09).
//   - PW-02: Policy refuses the username (case-insensitively), white space
//     only, one character repeated, and any password that zxcvbn reckons
//     an attacker finds in fewer than a million guesses (see "Too easy to
//     guess" below).
//   - PW-03: Hasher uses argon2id with at least m=19 MiB, t=2, p=1, a
//     16-byte salt from crypto/rand and a 32-byte key (DefaultParams, the
//     OWASP minimum; NewHasher refuses less). Verify reports when a stored
//     hash is weaker than the configured parameters, so that the caller
//     rehashes on sign-in. Keys are compared with crypto/subtle.
//   - PW-04: at most HasherConfig.MaxConcurrent hashes run at once; a caller
//     waits at most HasherConfig.Wait for a slot, then gets ErrBusy. At most
//     HasherConfig.MaxWaiting callers wait; a freed slot goes to the oldest
//     of the highest Priority (WithPriority), and a caller finding the queue
//     full gets ErrBusy at once unless it can push out one of lower
//     priority, so that a flood of Low sign-ins costs bounded memory and
//     never delays a High one by more than the hashes running. A
//     password longer than MaxBytes is refused before any hashing, and the
//     parser bounds what a stored hash may ask for (at most 256 MiB, 16
//     passes, 16 lanes, 64-byte salt and key), so neither a request nor a
//     corrupted database can exhaust memory.
//   - PW-05: VerifyDummy does the same work as Verify against a hash made
//     with the configured parameters.
//   - PW-09: Hash, Verify and Policy.Check work on the password normalised
//     to NFKC by Normalize, as NIST SP 800-63B advises, so that the JSON
//     API, the HTML form and the command line store and check the same
//     bytes for the same text, whichever spelling of it a keyboard, browser
//     or terminal produced ("é" composed or not, "ﬁ" or "fi", full-width
//     letters). Input that is not valid UTF-8 is refused by all of them with
//     ErrInvalidUTF8, before any hashing. Hashes made before normalisation
//     are of the bytes as typed: when the normalised password doesn't match
//     and differs from what was typed, Verify also checks what was typed,
//     and on a match answers ok with needsRehash, so the stored hash moves
//     to the normalised form at the next sign-in. That second check runs in
//     the same hashing slot after the MaxBytes bound (PW-04), and
//     VerifyDummy makes it too (PW-05). A password that was not valid UTF-8
//     can no longer sign in: its account needs a new password.
//
// # Too easy to guess
//
// Policy asks zxcvbn (github.com/trustelem/zxcvbn, a port of Dropbox's
// estimator, data included) how many guesses an attacker needs, and refuses
// fewer than a million (10^6): zxcvbn's scores 0 and 1 (PW-02). zxcvbn knows
// the 30,000 most common passwords of public breaches, 64,000 English words,
// names, surnames and film and TV words, keyboard walks, sequences, repeats,
// dates and l33t spellings, and Policy tells it the username, its parts and
// "tether": the values NIST SP 800-63B asks to block as commonly used,
// expected or compromised.
//
// Why 10^6: guessing a tether password is online, throttled and audited
// (PW-06, PW-07), and 10^6 guesses is what Florêncio, Herley and van
// Oorschot ("An Administrator's Guide to Internet Password Research", 2014)
// ask of a password to withstand online attacks. zxcvbn's authors already
// call 10^3 to 10^6 "protection from throttled online attacks"; the upper
// end leaves a margin for a patient attacker who spreads guesses over many
// addresses, and keeps every account's password out of anyone's first
// million guesses, which is what defeats spraying a few common passwords
// over all accounts. A higher bar (10^8, 10^10) is about offline cracking,
// which argon2id answers (PW-03); it would refuse many passwords people can
// remember and push them to the contortions NIST advises against.
//
// zxcvbn's time grows with the cube of the length (measured on this
// project's 2-core machine with the characters that cost it most: 20 ms at
// 32 characters, 0.25 s at 64, 3 s at 256, so minutes at 1 KiB), so Policy
// judges only the first 20 code points of the normalised password: a few
// milliseconds at most, a fraction of a hash (PW-04; BenchmarkPolicyCheck).
// A password that starts hard to guess is not weak however it goes on; one
// that starts weak is refused however it goes on; every password zxcvbn
// knows (the longest has 20 characters) and all but 4 of its words are
// judged whole.
package password
