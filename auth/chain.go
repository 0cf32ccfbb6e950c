package auth

import (
	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
)

// Method is one way of checking credentials. Check returns decided false
// when the credentials are not its kind (a username it does not know, a
// password that is not a JWT), so that the Chain tries the next one;
// otherwise it returns packet.Success or the refusal code. A Method that
// accepts may set info.Username, info.AuthExpiry and per-connection rules.
type Method interface {
	Check(info *broker.ClientInfo, password []byte) (code packet.ReasonCode, decided bool)
}

// Chain is Herald's broker.Authenticator. It decides in this order:
//
//  1. A verified client certificate on a listener in CNAsUsername: the
//     certificate's common name becomes the username and the client is
//     admitted; any username and password it sent are ignored.
//  2. No username and no password: anonymous, admitted (with an empty
//     username) only if AllowAnonymous, else refused with 0x87 Not
//     authorized (3.1.1: 5).
//  3. Each Method in turn (Herald's order: JWT, password file, HTTP hook);
//     the first that decides decides.
//  4. No Method decided: refused with 0x86 Bad user name or password
//     (3.1.1: 4) — unless there are no Methods at all, no listener takes
//     usernames from certificates, and AllowAnonymous, in which case
//     credentials are not checked and the username is taken as sent (an
//     open broker). Where certificates stand for usernames, a username
//     that nothing can check would let any client claim any identity.
type Chain struct {
	AllowAnonymous bool
	// CNAsUsername names the listeners whose verified client certificate
	// stands for the username (a listener's tls.cn_as_username).
	CNAsUsername map[string]bool
	Methods      []Method
}

// Authenticate implements broker.Authenticator.
func (c *Chain) Authenticate(info *broker.ClientInfo, password []byte) packet.ReasonCode {
	if info.CertCN != "" && c.CNAsUsername[info.Listener] {
		info.Username = info.CertCN
		return packet.Success
	}
	if info.Username == "" && len(password) == 0 {
		if c.AllowAnonymous {
			return packet.Success
		}
		return packet.NotAuthorized
	}
	for _, m := range c.Methods {
		if code, decided := m.Check(info, password); decided {
			return code
		}
	}
	if len(c.Methods) == 0 && len(c.CNAsUsername) == 0 && c.AllowAnonymous {
		return packet.Success
	}
	return packet.BadUsernameOrPassword
}
