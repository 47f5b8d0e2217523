package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func main() {
	name := flag.String("link", "eth0", "the link to keep")
	mtu := flag.Int("mtu", 0, "the MTU to keep it at")
	library := flag.Bool("library", false, "react through vishvananda/netlink's LinkSubscribe and LinkSetMTU")
	flag.Parse()
	if *mtu <= 0 {
		fmt.Fprintln(os.Stderr, "wslmtu-floor: --mtu is required")
		os.Exit(2)
	}
	run := runLean
	if *library {
		run = runLibrary
	}
	if err := run(*name, *mtu); err != nil {
		fmt.Fprintln(os.Stderr, "wslmtu-floor:", err)
		os.Exit(1)
	}
}

func runLibrary(name string, mtu int) error {
	// Subscribe before reading, so no reset between the two is missed.
	updates := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribe(updates, make(chan struct{})); err != nil {
		return fmt.Errorf("subscribing to link events: %w", err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	index := l.Attrs().Index
	if l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("%s: setting mtu %d: %w", name, mtu, err)
		}
	}
	fmt.Println("ready")
	for u := range updates {
		if u.Attrs().Index == index && u.Attrs().MTU != mtu {
			if err := netlink.LinkSetMTU(u.Link, mtu); err != nil {
				fmt.Fprintf(os.Stderr, "wslmtu-floor: %s: setting mtu %d: %v\n", name, mtu, err)
			}
		}
	}
	return fmt.Errorf("the link subscription ended")
}

var native = binary.NativeEndian

func runLean(name string, mtu int) error {
	runtime.LockOSThread() // blocking syscalls on this thread: no poller between the kernel and the write
	sub, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	if err := unix.Bind(sub, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_LINK - 1)}); err != nil {
		return fmt.Errorf("subscribing to link events: %w", err)
	}
	req, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	if err := unix.Bind(req, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	index := int32(l.Attrs().Index)
	// nlmsghdr, ifinfomsg, IFLA_MTU: built once.
	msg := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg+8)
	native.PutUint32(msg[0:], uint32(len(msg)))
	native.PutUint16(msg[4:], unix.RTM_SETLINK)
	native.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	native.PutUint32(msg[unix.NLMSG_HDRLEN+4:], uint32(index))
	attr := msg[unix.NLMSG_HDRLEN+unix.SizeofIfInfomsg:]
	native.PutUint16(attr[0:], 8)
	native.PutUint16(attr[2:], unix.IFLA_MTU)
	native.PutUint32(attr[4:], uint32(mtu))
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	ack := make([]byte, 4096)
	seq := uint32(0)
	write := func() error {
		seq++
		native.PutUint32(msg[8:], seq)
		if err := unix.Sendto(req, msg, 0, kernel); err != nil {
			return err
		}
		for {
			n, _, err := unix.Recvfrom(req, ack, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			if n >= unix.NLMSG_HDRLEN+4 && native.Uint16(ack[4:]) == unix.NLMSG_ERROR && native.Uint32(ack[8:]) == seq {
				if errno := int32(native.Uint32(ack[unix.NLMSG_HDRLEN:])); errno != 0 {
					return syscall.Errno(-errno)
				}
				return nil
			}
		}
	}
	if l.Attrs().MTU != mtu {
		if err := write(); err != nil {
			return fmt.Errorf("%s: setting mtu %d: %w", name, mtu, err)
		}
	}
	fmt.Println("ready")
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(sub, buf, 0)
		switch {
		case err == unix.EINTR, err == unix.ENOBUFS:
			continue
		case err != nil:
			return fmt.Errorf("reading link events: %w", err)
		}
		for b := buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			size := int(native.Uint32(b[0:]))
			if size < unix.NLMSG_HDRLEN || size > len(b) {
				break
			}
			if native.Uint16(b[4:]) == unix.RTM_NEWLINK {
				if got, ok := linkMTU(b[unix.NLMSG_HDRLEN:size], index); ok && got != mtu {
					if err := write(); err != nil {
						fmt.Fprintf(os.Stderr, "wslmtu-floor: %s: setting mtu %d: %v\n", name, mtu, err)
					}
				}
			}
			b = b[min(len(b), (size+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
		}
	}
}

// linkMTU is IFLA_MTU of an RTM_NEWLINK about index.
func linkMTU(data []byte, index int32) (int, bool) {
	if len(data) < unix.SizeofIfInfomsg || int32(native.Uint32(data[4:])) != index {
		return 0, false
	}
	for b := data[unix.SizeofIfInfomsg:]; len(b) >= unix.SizeofRtAttr; {
		n := int(native.Uint16(b[0:]))
		if n < unix.SizeofRtAttr || n > len(b) {
			return 0, false
		}
		if native.Uint16(b[2:]) == unix.IFLA_MTU && n >= unix.SizeofRtAttr+4 {
			return int(native.Uint32(b[unix.SizeofRtAttr:])), true
		}
		b = b[min(len(b), (n+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1)):]
	}
	return 0, false
}
