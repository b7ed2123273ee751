package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Limits of a send.
const (
	SendTimeout  = 10 * time.Second
	MaxBody      = 64 << 10 // bytes of a receiver's answer read, at most
	MaxURLLength = 2048
)

// ErrAddress: the receiver's address is one taxflow does not connect to (SSRF).
var ErrAddress = errors.New("address not allowed")

// blocked are the ranges no receiver may be in: private, shared (CGNAT), loopback,
// link-local, unspecified, multicast, documentation and benchmark nets, and the IPv6
// equivalents (unique local fc00::/7, link-local, site-local, NAT64 of a private v4,
// the IETF protocol assignments with Teredo).
var blocked = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "64:ff9b:1::/48", "2001:db8::/32",
		// IETF protocol assignments: Teredo (2001::/32, a tunnel to an IPv4 address it
		// carries obfuscated), benchmarking, ORCHID; no receiver lives there.
		"2001::/23"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	compat    = netip.MustParsePrefix("::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// AddressAllowed tells whether taxflow may connect to ip. allowLoopback (the local
// stack) lets loopback addresses through, and nothing else of the blocked ranges.
func AddressAllowed(ip netip.Addr, allowLoopback bool) bool {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return false
	}
	// IPv6 forms that carry an IPv4 address a translator or tunnel reaches (NAT64's
	// well-known prefix, 6to4, IPv4-compatible): judged by that IPv4 address.
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip), compat.Contains(ip) && !ip.IsUnspecified() && !ip.IsLoopback():
			return AddressAllowed(netip.AddrFrom4([4]byte(b[12:16])), allowLoopback)
		case sixToFour.Contains(ip):
			return AddressAllowed(netip.AddrFrom4([4]byte(b[2:6])), allowLoopback)
		}
	}
	if allowLoopback && ip.IsLoopback() {
		return true
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// control refuses, at connect time, an address AddressAllowed refuses: a name that
// resolved to a public address when registered and to a private one now (DNS
// rebinding) is refused here, whatever the resolver said earlier.
func control(allowLoopback bool) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s is not an address", ErrAddress, address)
		}
		if !AddressAllowed(ap.Addr(), allowLoopback) {
			return fmt.Errorf("%w: %s", ErrAddress, ap.Addr())
		}
		return nil
	}
}

// NewClient is the HTTP client of deliveries: 10 s for the whole exchange, no proxy, no
// redirect followed (a 3xx is the answer, a failed attempt), and a dialer that refuses
// the blocked ranges at connect time.
func NewClient(allowLoopback bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: control(allowLoopback)}
	t := &http.Transport{DialContext: d.DialContext, Proxy: nil, TLSHandshakeTimeout: 5 * time.Second,
		ResponseHeaderTimeout: SendTimeout, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}
	return &http.Client{Timeout: SendTimeout, Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Resolver looks names up (net.DefaultResolver; tests put their own).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURLSyntax judges what can be said of a receiver's URL without the network or the
// deployment's policy: present, bounded, absolute, http(s), no user information, no
// fragment, a host and a valid port. "" is well-formed.
func CheckURLSyntax(raw string) string {
	if raw == "" {
		return "required: the receiver's https:// URL"
	}
	if len(raw) > MaxURLLength {
		return fmt.Sprintf("at most %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "not an absolute URL (want https://host/path)"
	}
	if u.User != nil {
		return "must not carry user information (user:password@); authenticate by the signature"
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "must not carry a fragment (#…)"
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "must be https"
	}
	if u.Hostname() == "" {
		return "has no host"
	}
	if p := u.Port(); p != "" {
		if n, err := netip.ParseAddrPort("127.0.0.1:" + p); err != nil || n.Port() == 0 {
			return "has an invalid port"
		}
	}
	return ""
}

// CheckURL judges a receiver's URL at registration: well-formed (CheckURLSyntax), https
// (http only to a loopback host when allowLoopback), a host whose every address is
// allowed. The reason names what is wrong; "" is allowed.
func CheckURL(ctx context.Context, raw string, allowLoopback bool, r Resolver) string {
	if why := CheckURLSyntax(raw); why != "" {
		return why
	}
	u, _ := url.Parse(raw) // parsed by CheckURLSyntax
	if u.Scheme == "http" && !allowLoopback {
		return "must be https"
	}
	host := u.Hostname()
	// A name gets one answer whether it does not resolve or resolves to an internal
	// address: telling the two apart would let a caller probe which internal names exist.
	const notPublic = "the host does not resolve to a public address (taxflow connects to public addresses only)"
	var addrs []netip.Addr
	literal := false
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		addrs, literal = []netip.Addr{ip}, true
	} else {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		addrs, err = r.LookupNetIP(ctx, "ip", host)
		if err != nil || len(addrs) == 0 {
			return notPublic
		}
	}
	for _, a := range addrs {
		if !AddressAllowed(a, allowLoopback) {
			if !literal {
				return notPublic
			}
			return "the address is private, loopback, link-local or otherwise internal, which is not allowed"
		}
		if u.Scheme == "http" && !a.Unmap().IsLoopback() {
			return "must be https (http only to a loopback host in the local stack)"
		}
	}
	return ""
}
