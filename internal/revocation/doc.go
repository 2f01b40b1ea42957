// Package revocation brings token revocations to every verifier: the
// server's own, through a View of the session store's denylist, and remote
// ones (resource servers built on package token), through the stream GET
// /oauth2/revocations that token.RevocationStream follows.
//
//	var view *revocation.View // set before manager.Run starts
//	manager, _ := session.NewManager(store, session.Config{OnEvent: func(e session.Event) { view.Handle(e) }})
//	view, _ = revocation.NewView(manager, revocation.ViewConfig{})
//	go view.Run(ctx)
//	go manager.Run(ctx)
//	verifier, _ := token.NewVerifier(token.VerifierConfig{..., Revocations: view})
//	stream, _ := revocation.NewStream(view, revocation.StreamConfig{Authorize: authenticateClient})
//	mux.Handle("GET /oauth2/revocations", stream)
//
// # The View
//
// A View keeps the denylist (revoked jtis until their exp, and the
// denylist's subject entries) in memory, filled from a snapshot read after
// each FeedUp and from the TokenRevoked events of the feed, and caches
// subjects' generations as it reads them, forgetting one on its
// UserRevoked event. It answers Check from memory only while its snapshot
// is loaded and the Source says the feed is current: the bound SES-14 sets
// for sessions. Otherwise it asks the Source (the denylist, then the
// subject's generation), and an error of the Source is an error of Check,
// which the Verifier turns into a refusal (fail closed). FeedDown and
// FeedUp empty the memory: events may have been missed in between.
//
// # The stream's wire format
//
// Server-Sent Events (text/event-stream, UTF-8, lines ended by LF), of
// three kinds, each with its fields in this order:
//
//	event: revoke
//	id: 3f9c0a1b2c3d4e5f-42
//	data: {"jti":"0195f6a0-...","exp":1767225600}
//
//	event: revoke
//	data: {"sub":"client:billing","gen":3,"exp":1767225600}
//
//	event: snapshot
//	id: 3f9c0a1b2c3d4e5f-41
//	data: 2
//
//	event: heartbeat
//	data:
//
// A revoke event's data is one JSON object: either "jti", a revoked
// token's id, or "sub" and "gen", a subject all of whose tokens with a
// generation below gen are revoked; and "exp" (Unix seconds), after which
// the entry concerns no live token. Revocations are only ever added: a
// follower merges each into what it knows, and an entry it has already
// seen again changes nothing.
//
// On connect, the server sends every live entry as a revoke event without
// an id, then a snapshot event whose data is how many it sent and whose
// id is where the stream resumes from. Then each new revocation comes as
// a revoke event with an id. A follower that reconnects sends the last id
// it got as Last-Event-ID: if this node still holds what came after it
// (its recent history: the last ViewConfig.History revocations of the
// current up period of its feed), it gets those revoke events and no snapshot; otherwise (an
// id of another node, of before the feed was lost, too old, malformed) it
// gets the snapshot again.
//
// A heartbeat comes right after the snapshot or the missed events, and
// then every StreamConfig.Heartbeat (1 s), but only while the View is
// current (its snapshot loaded and its feed heard within the feed's
// staleness bound). A heartbeat tells the follower that it has been told
// everything the server knew within that bound: the follower's own
// staleness bound starts from it, so a revocation reaches a follower that
// still trusts its view within the server's bound (session
// Config.MaxStaleness, 1 s) plus the follower's.
//
// The server ends a subscription when the View's feed is lost (FeedDown
// or FeedUp: it starts a new history, so the follower's next connection
// gets a snapshot), when the subscriber's queue of revocations is full
// (StreamConfig.Buffer: it resumes from its last id), or when a write
// misses its deadline (StreamConfig.WriteTimeout). It answers 405 to
// anything but GET, what Authorize answers when it refuses, and 503 with Retry-After
// while the View is not current or StreamConfig.MaxSubscribers are
// connected; a follower retries all of them.
package revocation
