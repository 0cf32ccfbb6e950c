//go:build !linux

package client

import "errors"

// Poller is Linux only (epoll): elsewhere NewPoller fails and clients run
// Serve.
type Poller struct{}

// NewPoller fails outside Linux.
func NewPoller(n int) (*Poller, error) { return nil, errors.New("client: no poller on this system") }

// Close does nothing.
func (p *Poller) Close() {}

// ServeOn reports false: run Serve.
func (c *Client) ServeOn(p *Poller, h Handler, end func(error)) bool { return false }

type pollState struct{}

func (c *Client) unpoll() {}
