package config

import (
	"fmt"
	"net"
	"strconv"
)

// splitHostPort splits a listen address and checks that its port is a
// number; a named port ("mqtt") is refused so that what the file says is
// what the broker binds.
func splitHostPort(addr string) (host string, port int, err error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf(`must be host:port, e.g. "127.0.0.1:1883" or ":1883", got %q`, addr)
	}
	port, err = strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port must be a number from 0 to 65535, got %q", addr)
	}
	return host, port, nil
}

// isLoopback reports whether host names only the local machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// boundAddress is one address the broker will listen on, named by its key.
type boundAddress struct {
	path string
	addr string
	host string // canonical: IPs as net.IP.String, localhost as 127.0.0.1
	port int
}

// validateAddressConflicts rejects two sockets that cannot both be bound:
// the same port on the same host, or on a host and a wildcard covering it.
// Port 0 never conflicts: each bind gets its own free port.
func (c *Config) validateAddressConflicts(p *problems) {
	var bound []boundAddress
	add := func(path, addr string) {
		host, port, err := splitHostPort(addr)
		if err != nil || port == 0 {
			return // reported elsewhere, or free to bind twice
		}
		if host == "localhost" {
			host = "127.0.0.1"
		}
		if ip := net.ParseIP(host); ip != nil {
			host = ip.String()
		}
		b := boundAddress{path: path, addr: addr, host: host, port: port}
		for _, o := range bound {
			if o.port == b.port && hostsOverlap(o.host, b.host) {
				p.add(path, "%q conflicts with %s (%q)", addr, o.path, o.addr)
				return
			}
		}
		bound = append(bound, b)
	}
	for i, l := range c.Listeners {
		add(fmt.Sprintf("listeners[%d].address", i), l.Address)
	}
	if c.HTTP.Listen != "" {
		add("http.listen", c.HTTP.Listen)
	}
	if c.Cluster.Enabled && c.Cluster.NATSURL == "" {
		add("cluster.embedded.listen", c.Cluster.Embedded.Listen)
	}
}

// hostsOverlap reports whether binding the same port on hosts a and b
// conflicts. "" and "::" bind every address (Linux listens dual-stack by
// default); 0.0.0.0 binds every IPv4 address and so covers host names too,
// which usually resolve to one.
func hostsOverlap(a, b string) bool {
	if a == b || a == "" || b == "" || a == "::" || b == "::" {
		return true
	}
	covers := func(wild, h string) bool {
		ip := net.ParseIP(h)
		return wild == "0.0.0.0" && (ip == nil || ip.To4() != nil)
	}
	return covers(a, b) || covers(b, a)
}
