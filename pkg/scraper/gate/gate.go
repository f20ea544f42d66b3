// Package gate bounds how many kubelet response bodies are read and decoded
// at once, the memory bound of a scrape cycle. The scraper puts a Gate in
// the context of its requests; the kubelet client takes a slot once a
// kubelet's response headers have arrived and gives it back when the body
// is decoded. Waiting for an answer takes no slot: a kubelet that answers
// slowly or never costs a goroutine and a connection, not a decode.
//
// It knows nothing about kubelets, nodes or cycles.
package gate

import "context"

// Gate is a counting semaphore of decode slots. The zero value is not
// usable: call New.
type Gate struct {
	slots chan struct{}
}

// New returns a Gate of n slots (at least 1).
func New(n int) *Gate {
	return &Gate{slots: make(chan struct{}, max(n, 1))}
}

// Size is the number of slots.
func (g *Gate) Size() int { return cap(g.slots) }

// Acquire takes a slot, waiting until one is free or ctx ends; it then
// returns ctx's error and holds nothing. A request's deadline therefore
// bounds its wait. It allocates nothing.
func (g *Gate) Acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives back a slot taken by Acquire.
func (g *Gate) Release() { <-g.slots }

type key struct{}

// With returns ctx carrying g, for the requests made under it.
func With(ctx context.Context, g *Gate) context.Context {
	return context.WithValue(ctx, key{}, g)
}

// From returns the Gate ctx carries, nil when none: then nothing bounds
// the decodes (a caller outside the scrape cycle, such as the doctor).
func From(ctx context.Context) *Gate {
	g, _ := ctx.Value(key{}).(*Gate)
	return g
}
