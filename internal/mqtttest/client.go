// Package mqtttest is what Herald's end-to-end test packages share: a raw
// MQTT client that speaks the project's own codec over a plain socket, for
// tests that need exact control of every packet, and an in-process broker
// on a loopback listener that stops when the test ends.
package mqtttest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/packet"
)

// Default timeouts of a Client: generous for a loaded machine under -race,
// short enough that a missing packet fails fast.
const (
	DefaultWait  = 5 * time.Second        // a packet that must arrive
	DefaultQuiet = 400 * time.Millisecond // a packet that must not arrive
)

// Client is a raw MQTT connection. Its methods fail the test on anything
// unexpected; Recv and ReadFrame return errors for tests that expect them.
// One goroutine may receive while another sends.
type Client struct {
	Conn    net.Conn
	Version byte          // protocol level the codec speaks
	Wait    time.Duration // how long Next and the Expect helpers wait
	Quiet   time.Duration // how long ExpectNothing listens

	t    testing.TB
	buf  []byte // received bytes not yet split into frames
	rbuf []byte // read buffer
}

// Dial connects to addr and returns a Client speaking version, closed
// when the test ends.
func Dial(t testing.TB, addr string, version byte) *Client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, DefaultWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{Conn: c, Version: version, Wait: DefaultWait, Quiet: DefaultQuiet, t: t}
}

// Connect dials addr and completes CONNECT/CONNACK with p (protocol level
// 4 if p leaves it unset), failing the test unless the broker accepts.
func Connect(t testing.TB, addr string, p *packet.Connect) (*Client, *packet.Connack) {
	t.Helper()
	if p.ProtocolVersion == 0 {
		p.ProtocolVersion = packet.Version311
	}
	c := Dial(t, addr, p.ProtocolVersion)
	return c, c.Connect(p)
}

// Connect sends p and returns the CONNACK, which must be a success.
func (c *Client) Connect(p *packet.Connect) *packet.Connack {
	c.t.Helper()
	c.Send(p)
	ack := Expect[*packet.Connack](c)
	if ack.ReasonCode != packet.Success {
		c.t.Fatalf("CONNACK for %q refused: 0x%02X %q", p.ClientID, byte(ack.ReasonCode), ack.Props.ReasonString)
	}
	return ack
}

// V5 returns a clean-start MQTT 5 CONNECT for id.
func V5(id string) *packet.Connect {
	return &packet.Connect{ProtocolVersion: packet.Version5, ClientID: id, CleanStart: true}
}

// V311 returns a clean-session MQTT 3.1.1 CONNECT for id.
func V311(id string) *packet.Connect {
	return &packet.Connect{ProtocolVersion: packet.Version311, ClientID: id, CleanStart: true}
}

// Send encodes and writes p.
func (c *Client) Send(p packet.Packet) {
	c.t.Helper()
	if err := c.TrySend(p); err != nil {
		c.t.Fatal(err)
	}
}

// TrySend is Send returning the error, for a broker that may be gone.
func (c *Client) TrySend(p packet.Packet) error {
	b, err := packet.Encode(nil, c.Version, p)
	if err != nil {
		return fmt.Errorf("encode %T: %w", p, err)
	}
	return c.write(b)
}

// Write writes raw bytes: malformed or hand-built frames.
func (c *Client) Write(b []byte) {
	c.t.Helper()
	if err := c.write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *Client) write(b []byte) error {
	c.Conn.SetWriteDeadline(time.Now().Add(c.Wait))
	if _, err := c.Conn.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// ReadFrame returns the next complete frame undecoded, or an error on
// timeout (after d), EOF or a malformed fixed header.
func (c *Client) ReadFrame(d time.Duration) ([]byte, error) {
	deadline := time.Now().Add(d)
	for {
		n, err := packet.SplitFrame(c.buf, 0)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			// Appends go past the frame's end: the frame stays as it is.
			f := c.buf[:n:n]
			c.buf = c.buf[n:]
			return f, nil
		}
		c.Conn.SetReadDeadline(deadline)
		if c.rbuf == nil {
			c.rbuf = make([]byte, 64<<10)
		}
		m, err := c.Conn.Read(c.rbuf)
		c.buf = append(c.buf, c.rbuf[:m]...)
		if err != nil && m == 0 {
			return nil, err
		}
	}
}

// Recv returns the next packet, or an error on timeout (after d), EOF or
// a packet that does not decode.
func (c *Client) Recv(d time.Duration) (packet.Packet, error) {
	f, err := c.ReadFrame(d)
	if err != nil {
		return nil, err
	}
	p, err := packet.Decode(c.Version, f)
	if err != nil {
		return nil, fmt.Errorf("decode % x: %w", f, err)
	}
	return p, nil
}

// Next returns the next packet, failing the test if none arrives within
// Wait.
func (c *Client) Next() packet.Packet {
	c.t.Helper()
	p, err := c.Recv(c.Wait)
	if err != nil {
		c.t.Fatalf("waiting for a packet: %v", err)
	}
	return p
}

// Expect returns the next packet as a T or fails the test.
func Expect[T packet.Packet](c *Client) T {
	c.t.Helper()
	p := c.Next()
	v, ok := p.(T)
	if !ok {
		var zero T
		c.t.Fatalf("got %T %+v, want %T", p, p, zero)
	}
	return v
}

// ExpectAck returns the next packet, which must be an ack of kind for
// packet id pid.
func (c *Client) ExpectAck(kind packet.Type, pid uint16) *packet.Ack {
	c.t.Helper()
	a := Expect[*packet.Ack](c)
	if a.Kind != kind || a.PacketID != pid {
		c.t.Fatalf("got %v id %d, want %v id %d", a.Kind, a.PacketID, kind, pid)
	}
	return a
}

// ExpectNothing fails the test if a packet arrives, or the connection
// ends, within Quiet.
func (c *Client) ExpectNothing() {
	c.t.Helper()
	p, err := c.Recv(c.Quiet)
	if err == nil {
		c.t.Fatalf("unexpected %T %+v", p, p)
	}
	if !IsTimeout(err) {
		c.t.Fatalf("connection ended: %v", err)
	}
}

// ExpectClosed reads until the broker closes the connection, which it must
// do within d, and returns the packets that came before.
func (c *Client) ExpectClosed(d time.Duration) []packet.Packet {
	c.t.Helper()
	var got []packet.Packet
	deadline := time.Now().Add(d)
	for {
		p, err := c.Recv(time.Until(deadline))
		if err == nil {
			got = append(got, p)
			continue
		}
		if IsTimeout(err) {
			c.t.Fatalf("connection still open after %v (received %v)", d, got)
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			c.t.Fatalf("reading: %v", err)
		}
		return got
	}
}

// ExpectDisconnect asserts that the broker sends an MQTT 5 DISCONNECT with
// code (or one of alt) and closes the connection within d.
func (c *Client) ExpectDisconnect(code packet.ReasonCode, d time.Duration, alt ...packet.ReasonCode) {
	c.t.Helper()
	got := c.ExpectClosed(d)
	for _, p := range got {
		if dp, ok := p.(*packet.Disconnect); ok {
			if dp.ReasonCode != code && !slices.Contains(alt, dp.ReasonCode) {
				c.t.Fatalf("DISCONNECT reason 0x%02X, want 0x%02X", byte(dp.ReasonCode), byte(code))
			}
			return
		}
	}
	c.t.Fatalf("closed without DISCONNECT 0x%02X (got %v)", byte(code), got)
}

// IsTimeout reports whether err is a deadline passing, not the end of the
// connection.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
