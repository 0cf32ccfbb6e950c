//go:build !linux

package transport

import (
	"context"
	"net"
)

// EpollServer is the epoll transport; on this system it cannot be created.
type EpollServer struct{}

// ListenEpoll returns ErrEpollUnsupported: epoll is Linux-only.
func ListenEpoll(ctx context.Context, addr string, opts EpollOptions, accept Accepter) (*EpollServer, error) {
	return nil, ErrEpollUnsupported
}

// Addr returns nil.
func (s *EpollServer) Addr() net.Addr { return nil }

// Close returns ErrEpollUnsupported.
func (s *EpollServer) Close() error { return ErrEpollUnsupported }

// Stats returns zero counters.
func (s *EpollServer) Stats() EpollStats { return EpollStats{} }
