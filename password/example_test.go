package password_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/tetherauth/tether/password"
)

func ExampleHasher() {
	ctx := context.Background()
	h, err := password.NewHasher(password.HasherConfig{}) // DefaultParams, runtime.NumCPU() slots
	if err != nil {
		log.Fatal(err)
	}

	encoded, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	fields := strings.Split(encoded, "$") // "", algorithm, version, parameters, salt, key
	fmt.Println(fields[1], fields[2], fields[3])

	ok, needsRehash, err := h.Verify(ctx, "correct horse battery staple", encoded)
	fmt.Println(ok, needsRehash, err)
	ok, _, err = h.Verify(ctx, "Correct horse battery staple", encoded)
	fmt.Println(ok, err)
	// Output:
	// argon2id v=19 m=19456,t=2,p=1
	// true false <nil>
	// false <nil>
}

// A sign-in where the user may not exist: VerifyDummy makes the unknown
// user's answer take as long as a wrong password's (PW-05).
func ExampleHasher_VerifyDummy() {
	ctx := context.Background()
	h, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		log.Fatal(err)
	}
	stored := map[string]string{} // username -> PHC string; nobody yet

	signIn := func(username, pw string) error {
		encoded, found := stored[username]
		if !found {
			if err := h.VerifyDummy(ctx, pw); err != nil {
				return err // ErrBusy: 503
			}
			return fmt.Errorf("wrong username or password")
		}
		ok, _, err := h.Verify(ctx, pw, encoded)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("wrong username or password")
		}
		return nil
	}
	fmt.Println(signIn("mallory", "hunter22"))
	// Output:
	// wrong username or password
}

func ExamplePolicy_Check() {
	policy := password.Policy{} // MinLength 8, MaxLength 1024 bytes
	for _, pw := range []string{
		"hunter2",
		"aaaaaaaaaaaa",
		"P@ssw0rd!",
		"alice.smith2",
		"Alice.Smith",
		"correct horse battery staple",
	} {
		fmt.Println(policy.Check(pw, "alice.smith"))
	}
	// Output:
	// password is too short: use at least 8 characters
	// password is one character repeated: use different characters, for example a few unrelated words
	// password is too common: attackers try it early (common passwords, words, names, dates, keyboard patterns, your username); choose another, for example a few unrelated words
	// password is too common: attackers try it early (common passwords, words, names, dates, keyboard patterns, your username); choose another, for example a few unrelated words
	// password is the same as the username: choose a password that is not your username
	// <nil>
}

func ExampleNeedsRehash() {
	// A hash made with the OWASP minimum, after the server moved to 64 MiB.
	stored := "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$S0tLS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0tLSw"
	fmt.Println(password.NeedsRehash(stored, password.DefaultParams))
	fmt.Println(password.NeedsRehash(stored, password.Params{Memory: 64 * 1024}))
	// Output:
	// false
	// true
}

// A sign-in server under a flood of guesses: attempts from browsers that
// signed in to the account before wait for a hashing slot ahead of
// everyone else, and the others are refused at once when the queue is full
// of them.
func ExampleWithPriority() {
	h, err := password.NewHasher(password.HasherConfig{MaxConcurrent: 2}) // at most 16 wait
	if err != nil {
		log.Fatal(err)
	}
	knownDevice := true // say, a valid device cookie of the account
	p := password.Low
	if knownDevice {
		p = password.High
	}
	if h.Saturated(p) {
		fmt.Println("503: busy") // before any costlier work
		return
	}
	ctx := password.WithPriority(context.Background(), p)
	err = h.VerifyDummy(ctx, "correct horse battery staple")
	fmt.Println(password.PriorityOf(ctx), err)
	// Output:
	// high <nil>
}
