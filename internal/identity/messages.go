package identity

import (
	"context"

	"github.com/kumo-cloud/kumo/internal/bus"
)

// Bus messages of the identity service, with their version history.
//
// identity.changed (fan-out on SubjectChanged), published after every
// identity write so that other processes drop cached tokens at once
// instead of at their next generation poll:
//
//	1.0  {"generation": N}
const (
	SubjectChanged = "kumo.identity.changed"
	MsgChanged     = "identity.changed"
)

// ChangedV1 is the payload of identity.changed 1.0.
type ChangedV1 struct {
	Generation int64 `json:"generation"`
}

var changedVersion = bus.Version{Major: 1, Minor: 0}

// SetBus makes the service announce its writes and listen to others'.
func (s *Service) SetBus(b *bus.Bus) { s.bus = b }

func (s *Service) announce(ctx context.Context) {
	if s.bus == nil {
		return
	}
	if err := s.bus.Publish(ctx, SubjectChanged, MsgChanged, changedVersion, ChangedV1{Generation: s.gen.Load()}); err != nil {
		s.log.Warn("announce identity change", "err", err)
	}
}

// listen refreshes the caches when another process announces a newer
// generation.
func (s *Service) listen() (*bus.Subscription, error) {
	return s.bus.Subscribe(SubjectChanged, "", map[string]bus.Version{MsgChanged: changedVersion},
		func(ctx context.Context, m *bus.Message) (any, error) {
			var c ChangedV1
			if err := m.Decode(&c); err != nil {
				return nil, err
			}
			if c.Generation > s.gen.Load() {
				return nil, s.Refresh(ctx)
			}
			return nil, nil
		})
}
