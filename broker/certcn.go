package broker

import "github.com/herald-mqtt/herald/transport"

// peerCertificateCN returns the common name of c's client certificate when
// its transport verified one (tls and wss listeners), else "". Transports
// report it through an optional method so that transport.Conn stays small
// and the plain-TCP path carries nothing for it.
func peerCertificateCN(c transport.Conn) string {
	if p, ok := c.(interface{ PeerCertificateCN() string }); ok {
		return p.PeerCertificateCN()
	}
	return ""
}
