// Package fakekernel is an in-memory kernel for tests that need no root:
// links, routes and policy rules that detect can observe, fix can change
// and the agent can follow through netwatch events. Every change, ours or
// "somebody else's", emits the event the real kernel would, and the
// changes the code under test makes are recorded as text, so a test
// compares whole call lists (after tailscale's osrouter fakes).
//
// It is for tests only. It may import detect, internal/netwatch,
// internal/tunnel and internal/testenv/wsldistro.
package fakekernel
