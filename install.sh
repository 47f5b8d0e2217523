#!/bin/sh
# install.sh: install, update or remove wslmtu on this machine.
# Run as root from a checkout:  sudo ./install.sh [options]
set -eu

PREFIX_BIN=/usr/local/bin
BIN=$PREFIX_BIN/wslmtu
CONF_DIR=/etc/wslmtu
CONF=$CONF_DIR/wslmtu.toml
STATE_DIR=/var/lib/wslmtu
LOG=/var/log/wslmtu.log

usage() {
	cat <<EOF
Usage: sudo ./install.sh [--binary PATH] [--assume-wsl]
       sudo ./install.sh --uninstall [--purge]

Installs wslmtu to $BIN, writes a commented default config to $CONF
(only if there is none) and starts the agent: as wslmtu.service under
systemd, or from the [boot] command of /etc/wsl.conf on WSL without systemd.
Running it again updates the binary and restarts the agent.

Options:
  --binary PATH   install this wslmtu binary instead of building one
                  (building needs Go: in PATH or /usr/local/go/bin)
  --assume-wsl    treat this host as WSL2 even if it is not detected as one
                  (written as assume_wsl = true into a new config)
  --uninstall     stop and remove the agent and $BIN; keeps $CONF
  --purge         with --uninstall: also remove $CONF_DIR and $STATE_DIR
  -h, --help      show this help

Exit status: 0 done, 1 failed (nothing is left half-installed), 2 bad usage.
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
die() {
	printf 'install.sh: error: %s\n' "$*" >&2
	exit 1
}
usage_error() {
	printf 'install.sh: %s (see --help)\n' "$*" >&2
	exit 2
}

binary=""
assume_wsl=0
uninstall=0
purge=0
while [ $# -gt 0 ]; do
	case $1 in
	--binary)
		[ $# -ge 2 ] || usage_error "--binary needs a path"
		binary=$2
		shift 2
		;;
	--binary=*)
		binary=${1#--binary=}
		shift
		;;
	--assume-wsl)
		assume_wsl=1
		shift
		;;
	--uninstall)
		uninstall=1
		shift
		;;
	--purge)
		purge=1
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*) usage_error "unknown option: $1" ;;
	esac
done
if [ "$purge" = 1 ] && [ "$uninstall" = 0 ]; then
	usage_error "--purge only goes with --uninstall"
fi
if [ "$uninstall" = 1 ] && { [ -n "$binary" ] || [ "$assume_wsl" = 1 ]; }; then
	usage_error "--binary and --assume-wsl do not go with --uninstall"
fi
if [ "$(id -u)" != 0 ]; then
	die "must run as root: sudo $0 $*"
fi

# Temporary files live next to their targets so that mv is an atomic rename.
tmpdir=""
cleanup() {
	[ -z "$tmpdir" ] || rm -rf "$tmpdir"
	rm -f "$PREFIX_BIN/.wslmtu.new.$$" "$CONF.new.$$"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

do_uninstall() {
	if [ -x "$BIN" ]; then
		"$BIN" uninstall || die "wslmtu uninstall failed; $BIN is kept so that you can retry"
	elif [ -e /etc/systemd/system/wslmtu.service ]; then
		# The binary is gone already: remove the unit by hand.
		if [ -d /run/systemd/system ]; then
			systemctl disable --now wslmtu.service || die "could not stop wslmtu.service"
		fi
		rm -f /etc/systemd/system/wslmtu.service
		[ ! -d /run/systemd/system ] || systemctl daemon-reload
		say "removed /etc/systemd/system/wslmtu.service"
	fi
	if [ -e "$BIN" ]; then
		rm -f "$BIN"
		say "removed $BIN"
	fi
	if [ "$purge" = 1 ]; then
		rm -rf "$CONF_DIR" "$STATE_DIR" "$LOG"
		say "purged $CONF_DIR, $STATE_DIR and $LOG"
	elif [ -e "$CONF" ]; then
		say "kept your config $CONF (--purge removes it)"
	fi
	say "wslmtu is uninstalled"
}

find_go() {
	if command -v go >/dev/null 2>&1; then
		command -v go
	elif [ -x /usr/local/go/bin/go ]; then
		echo /usr/local/go/bin/go
	else
		return 1
	fi
}

build() {
	src_dir=$(cd "$(dirname "$0")" && pwd)
	if [ ! -f "$src_dir/go.mod" ] || [ ! -d "$src_dir/cmd/wslmtu" ]; then
		die "no Go checkout next to $0: pass --binary PATH"
	fi
	gobin=$(find_go) || die "Go not found (PATH, /usr/local/go/bin): install Go or pass --binary PATH"
	tmpdir=$(mktemp -d)
	say "building wslmtu with $gobin"
	(cd "$src_dir" && CGO_ENABLED=0 "$gobin" build -trimpath -o "$tmpdir/wslmtu" ./cmd/wslmtu) ||
		die "go build failed"
	binary=$tmpdir/wslmtu
}

# default_config writes the commented defaults to $tmpdir/wslmtu.toml from
# the binary about to be installed (`wslmtu config --default`), so they are
# the code's own and cannot drift from it. It runs before anything is
# installed: a failure leaves nothing to roll back.
default_config() {
	set -- config --default
	[ "$assume_wsl" = 0 ] || set -- "$@" --assume-wsl
	"$binary" "$@" >"$tmpdir/wslmtu.toml" || die "$binary config --default failed"
}

do_install() {
	if [ -n "$binary" ]; then
		if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
			die "--binary $binary: not an executable file"
		fi
		"$binary" --help >/dev/null 2>&1 || die "--binary $binary: does not run here (wrong architecture?)"
	else
		build
	fi

	[ -n "$tmpdir" ] || tmpdir=$(mktemp -d)
	[ -e "$CONF" ] || default_config

	mkdir -p "$PREFIX_BIN"
	had_binary=0
	if [ -e "$BIN" ]; then
		had_binary=1
		cp -p "$BIN" "$tmpdir/wslmtu.old"
	fi
	cp "$binary" "$PREFIX_BIN/.wslmtu.new.$$"
	chmod 0755 "$PREFIX_BIN/.wslmtu.new.$$"
	mv -f "$PREFIX_BIN/.wslmtu.new.$$" "$BIN"
	say "installed $BIN"

	made_config=0
	if [ ! -e "$CONF" ]; then
		mkdir -p "$CONF_DIR"
		cp "$tmpdir/wslmtu.toml" "$CONF.new.$$"
		chmod 0644 "$CONF.new.$$"
		mv -f "$CONF.new.$$" "$CONF"
		made_config=1
		say "wrote the default config $CONF"
	else
		say "kept the existing config $CONF"
		if [ "$assume_wsl" = 1 ] && ! grep -Eq '^[[:space:]]*assume_wsl[[:space:]]*=[[:space:]]*true' "$CONF"; then
			say "note: $CONF does not set assume_wsl = true; the agent will detect WSL by itself"
		fi
	fi

	set -- install
	[ "$assume_wsl" = 0 ] || set -- "$@" --assume-wsl
	if "$BIN" "$@"; then
		say "done"
		return 0
	fi

	# Roll back to what was there before.
	say "wslmtu install failed; rolling back" >&2
	if [ "$had_binary" = 1 ]; then
		mv -f "$tmpdir/wslmtu.old" "$BIN"
		"$BIN" install || say "the previous version did not start again either: see above" >&2
	else
		"$BIN" uninstall >/dev/null 2>&1 || true
		rm -f "$BIN"
	fi
	if [ "$made_config" = 1 ]; then
		rm -f "$CONF"
		rmdir "$CONF_DIR" 2>/dev/null || true
	fi
	die "installation failed (see the messages above); rolled back to the previous state"
}

if [ "$uninstall" = 1 ]; then
	do_uninstall
else
	do_install
fi
