package mqtttest

import "github.com/herald-mqtt/herald/packet"

// Subscribe sends SUBSCRIBE with subs and returns the SUBACK's reason
// codes, one per subscription.
func (c *Client) Subscribe(pid uint16, props packet.Properties, subs ...packet.Subscription) []packet.ReasonCode {
	c.t.Helper()
	c.Send(&packet.Subscribe{PacketID: pid, Props: props, Subscriptions: subs})
	ack := Expect[*packet.Suback](c)
	if ack.PacketID != pid {
		c.t.Fatalf("SUBACK id %d, want %d", ack.PacketID, pid)
	}
	return ack.ReasonCodes
}

// SubscribeOne subscribes to filter at qos and requires it granted.
func (c *Client) SubscribeOne(filter string, qos byte) {
	c.t.Helper()
	codes := c.Subscribe(1, packet.Properties{}, packet.Subscription{Filter: filter, QoS: qos})
	if len(codes) != 1 || codes[0] != packet.ReasonCode(qos) {
		c.t.Fatalf("SUBACK %v for %q, want granted QoS %d", codes, filter, qos)
	}
}

// Publish sends p (packet id 100 if it needs one and has none) and
// completes its QoS flow from the sender's side. It returns the PUBACK or
// PUBREC reason code, Success for QoS 0.
func (c *Client) Publish(p *packet.Publish) packet.ReasonCode {
	c.t.Helper()
	if p.QoS > 0 && p.PacketID == 0 {
		p.PacketID = 100
	}
	c.Send(p)
	switch p.QoS {
	case 1:
		return c.ExpectAck(packet.PUBACK, p.PacketID).ReasonCode
	case 2:
		rc := c.ExpectAck(packet.PUBREC, p.PacketID).ReasonCode
		if rc >= 0x80 {
			return rc
		}
		c.Send(&packet.Ack{Kind: packet.PUBREL, PacketID: p.PacketID})
		c.ExpectAck(packet.PUBCOMP, p.PacketID)
		return rc
	}
	return packet.Success
}

// RecvPublish returns the next packet, which must be a PUBLISH, and
// acknowledges it as AckPublish does.
func (c *Client) RecvPublish() *packet.Publish {
	c.t.Helper()
	p := Expect[*packet.Publish](c)
	c.AckPublish(p)
	return p
}

// AckPublish completes the receiver's side of p's QoS flow: PUBACK for
// QoS 1, PUBREC, PUBREL and PUBCOMP for QoS 2.
func (c *Client) AckPublish(p *packet.Publish) {
	c.t.Helper()
	switch p.QoS {
	case 1:
		c.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
	case 2:
		c.Send(&packet.Ack{Kind: packet.PUBREC, PacketID: p.PacketID})
		c.ExpectAck(packet.PUBREL, p.PacketID)
		c.Send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: p.PacketID})
	}
}

// Disconnect sends a normal DISCONNECT and waits for the broker to close
// the connection [MQTT-3.14.4-1].
func (c *Client) Disconnect() {
	c.t.Helper()
	c.Send(&packet.Disconnect{})
	c.ExpectClosed(c.Wait)
}
