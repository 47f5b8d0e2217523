package firewall

import (
	"encoding/binary"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

// nftAttrs reads the attributes after an answer's 4-byte nfgenmsg, with
// the nested flag cleared; an answer too short or malformed has none.
func TestNFTAttrs(t *testing.T) {
	attr := func(typ uint16, v string) []byte {
		b := make([]byte, 4, 4+len(v)+3)
		binary.LittleEndian.PutUint16(b, uint16(4+len(v)))
		binary.LittleEndian.PutUint16(b[2:], typ)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	msg := []byte{unix.NFPROTO_IPV4, unix.NFNETLINK_V0, 0, 0}
	msg = append(msg, attr(unix.NFTA_CHAIN_TABLE, "mangle\x00")...)
	msg = append(msg, attr(unix.NFTA_CHAIN_NAME|unix.NLA_F_NESTED, "WSLMTU-IN\x00")...)
	type seen struct {
		Typ uint16
		V   string
	}
	read := func(data []byte) []seen {
		var out []seen
		nftAttrs(data, func(typ uint16, v []byte) { out = append(out, seen{typ, string(v)}) })
		return out
	}
	want := []seen{{unix.NFTA_CHAIN_TABLE, "mangle\x00"}, {unix.NFTA_CHAIN_NAME, "WSLMTU-IN\x00"}}
	if got := read(msg); !reflect.DeepEqual(got, want) {
		t.Errorf("attributes %+v, want %+v", got, want)
	}
	for _, bad := range [][]byte{nil, msg[:3], msg[:4], append(msg[:4:4], 0xff, 0xff, 1, 0)} {
		if got := read(bad); got != nil {
			t.Errorf("%x: attributes %+v, want none", bad, got)
		}
	}
}
