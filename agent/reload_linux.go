package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/wslmtu/wslmtu/internal/config"
)

// configReload turns the config file's change events into one reload once
// the file has been quiet for a moment: `printf … > F` truncates first, and
// an editor replaces the file in several steps, so reading at the first
// event would catch a half-written file (an empty one reads as the
// defaults).
type configReload struct {
	ready chan struct{} // a reload is due
	again chan struct{} // the file was still changing: wait once more
}

// due is ready to receive when the file has settled after a change.
func (r *configReload) due() <-chan struct{} {
	if r == nil {
		return nil
	}
	return r.ready
}

func (a *agent) watchConfig(ctx context.Context) *configReload {
	if a.ConfigPath == "" {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		a.log.Warn("config changes will need a restart", "error", err)
		return nil
	}
	// The directory, not the file: editors save by replacing the file, and
	// a watch on the old inode would go silent.
	dir := filepath.Dir(a.ConfigPath)
	if err := w.Add(dir); err != nil {
		a.log.Warn("config changes will need a restart", "directory", dir, "error", err)
		w.Close()
		return nil
	}
	r := &configReload{ready: make(chan struct{}, 1), again: make(chan struct{}, 1)}
	file, settle, log := filepath.Clean(a.ConfigPath), a.ConfigSettle, a.log
	go func() {
		defer w.Close()
		timer := stoppedTimer()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == file {
					timer.Reset(settle)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("watching the config", "error", err)
				timer.Reset(settle) // events may have been lost: look anyway
			case <-r.again:
				timer.Reset(settle)
			case <-timer.C:
				select {
				case r.ready <- struct{}{}:
				default:
				}
			}
		}
	}()
	return r
}

// reloadConfig reads the config file again. It never acts on a file that
// is still changing, a missing file keeps the config in force (an editor
// may be replacing it), and an invalid one is logged with file:line and
// changes nothing. What the new config no longer wants of the old one is
// undone by the next reconcile, which plans from the values before wslmtu.
func (a *agent) reloadConfig(why string) {
	if a.ConfigPath == "" {
		return
	}
	before := stampOf(a.ConfigPath)
	if before.exists && time.Since(before.mtime) < a.ConfigSettle {
		a.askAgain()
		return
	}
	cfg, err := config.Reload(a.ConfigPath)
	if after := stampOf(a.ConfigPath); after != before {
		a.askAgain() // it changed while being read
		return
	}
	a.configRead = before
	if errors.Is(err, config.ErrMissing) {
		a.log.Warn("the config file is missing; keeping the config in force until it is back", "file", a.ConfigPath, "config", a.cfg.Describe())
		return
	}
	if err == nil && a.Overlay != nil {
		cfg, err = a.Overlay(cfg)
	}
	if err != nil {
		var cfgErr *config.Error
		if errors.As(err, &cfgErr) {
			a.log.Error("invalid config; keeping the previous one", "error", cfgErr.Error())
		} else {
			a.log.Error("cannot read the config; keeping the previous one", "error", err)
		}
		return
	}
	if cfg.StateDir != a.cfg.StateDir {
		a.log.Error("state_dir cannot change while the agent runs; keeping the one in use (restart the agent to move it: sudo systemctl restart wslmtu)",
			"in_use", a.cfg.StateDir, "config", cfg.StateDir)
		cfg.StateDir = a.cfg.StateDir
	}
	if fmt.Sprint(cfg) == fmt.Sprint(a.cfg) {
		return
	}
	a.cfg = cfg
	clear(a.known) // decided under the old config
	a.counters.Config = cfg.Describe()
	a.verify.check(cfg)
	a.armMSSResync()
	a.log.Info("config reloaded", "config", cfg.Describe(), "why", why)
	a.pending = append(a.pending, cause{at: time.Now(), kind: causeReload})
	a.mssKey = "" // the firewall is looked at with the new config
}

func (a *agent) askAgain() {
	if a.reload == nil {
		return
	}
	select {
	case a.reload.again <- struct{}{}:
	default:
	}
}
