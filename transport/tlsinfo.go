package transport

import (
	"crypto/tls"
	"net"
)

// PeerCertificateCN returns the common name of the client certificate that
// the TLS handshake verified against the listener's client CAs, or "" when
// the connection is not TLS or the client sent no certificate. A
// certificate that was not verified (tls.RequestClientCert) does not count.
// The broker reads it through this method to fill ClientInfo.CertCN.
func (g *gconn) PeerCertificateCN() string { return peerCertificateCN(g.c) }

// peerCertificateCN is PeerCertificateCN for any net.Conn that reports a
// TLS state: *tls.Conn and the WebSocket adapter of a wss connection.
func peerCertificateCN(c net.Conn) string {
	cs, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return ""
	}
	st := cs.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return ""
	}
	return st.VerifiedChains[0][0].Subject.CommonName
}
