package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// PebbleOptions tunes a Pebble store. The zero value is the recommended
// configuration: small enough that an idle broker holds a few MiB for the
// store, large enough that group commit, not memory, bounds write speed.
type PebbleOptions struct {
	// CacheSize is the block cache in bytes, shared by reads of sessions,
	// messages and retained messages at startup and by lookups. Default
	// 8 MiB: the broker keeps live state in memory and reads the store
	// mostly once, at startup, so a large cache would be idle memory.
	CacheSize int64
	// MemTableSize is the largest size in bytes of one memtable, the write
	// buffer flushed to an sstable when full. Pebble starts with a 256 KiB
	// memtable and doubles up to this, so an idle store stays small.
	// Default 4 MiB; at most 4 memtables are kept before writes stall.
	MemTableSize uint64
	// MaxOpenFiles bounds the sstables kept open. Default 256, low because
	// file descriptors are for client connections.
	MaxOpenFiles int
	// Logger receives Pebble's messages, its informational ones at Debug.
	// Default: slog.Default().
	Logger *slog.Logger

	// fs replaces the file system, for tests that simulate power loss.
	fs vfs.FS
}

const (
	defaultCacheSize    = 8 << 20
	defaultMemTableSize = 4 << 20
	defaultMaxOpenFiles = 256
	// memTableStopWrites is the number of memtables queued for flushing at
	// which Pebble stalls writes: it bounds write-buffer memory to
	// memTableStopWrites × MemTableSize.
	memTableStopWrites = 4
)

// OpenPebble opens the Herald store in dir, creating it if dir does not
// exist or is empty. It refuses, with an error naming dir and the cause, a
// directory that is unreadable, holds no Pebble database, holds a Pebble
// database that is corrupt or not Herald's, or holds a store of a format
// version this build does not know. It never starts a new empty store in
// place of one it could not read.
func OpenPebble(dir string, opts PebbleOptions) (*Pebble, error) {
	fsys := opts.fs
	if fsys == nil {
		fsys = vfs.Default
	}
	fresh, err := isFresh(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	p := &Pebble{dir: dir}
	po := &pebble.Options{
		FS:                          &countingFS{FS: fsys, stats: &p.stats},
		CacheSize:                   orDefault(opts.CacheSize, defaultCacheSize),
		MemTableSize:                orDefault(opts.MemTableSize, defaultMemTableSize),
		MemTableStopWritesThreshold: memTableStopWrites,
		MaxOpenFiles:                orDefault(opts.MaxOpenFiles, defaultMaxOpenFiles),
		Logger:                      slogLogger{orDefault(opts.Logger, slog.Default())},
		// A directory with files in it must already be a database: Pebble
		// would otherwise create a new one beside foreign files.
		ErrorIfNotExists: !fresh,
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		if errors.Is(err, pebble.ErrDBDoesNotExist) {
			return nil, fmt.Errorf("store: open %s: not a Herald store: the directory is not empty and holds no Pebble database", dir)
		}
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("store: open %s: the directory is locked by another process (is another herald running on it?): %w", dir, err)
		}
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	p.db = db
	if err := p.checkFormat(fresh); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return p, nil
}

// isFresh reports whether dir is absent or empty (created here if absent),
// and fails if it is unreadable or not a directory.
func isFresh(fsys vfs.FS, dir string) (bool, error) {
	fi, err := fsys.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, fsys.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, errors.New("not a directory")
	}
	names, err := fsys.List(dir)
	if err != nil {
		return false, err
	}
	for _, name := range names {
		// A file system's own lost+found does not make the root of a
		// freshly mounted volume (the usual home of ./data in a container)
		// someone else's directory.
		if name != "lost+found" {
			return false, nil
		}
	}
	return true, nil
}

// checkFormat reads the format key, writing it into a new store. An
// existing database without the key is refused: either it is not Herald's,
// or its write-ahead log (which held everything, key included) could not
// be replayed, and starting empty would silently lose the sessions and
// messages it held.
func (p *Pebble) checkFormat(fresh bool) error {
	v, closer, err := p.db.Get(formatKey)
	if errors.Is(err, pebble.ErrNotFound) {
		empty, err := p.isEmpty()
		if err != nil {
			return err
		}
		if !empty {
			return errors.New("not a Herald store: a Pebble database without Herald's format key")
		}
		if !fresh {
			return errors.New("the store holds no data and no format key although its files exist: its write-ahead log is unreadable (corrupt) or it was never completely created; move the directory aside to start empty")
		}
		return p.db.Set(formatKey, binary.BigEndian.AppendUint32(nil, formatVersion), pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("read format version: %w", err)
	}
	defer closer.Close()
	if len(v) != 4 {
		return fmt.Errorf("not a Herald store: format key holds %d bytes, want 4", len(v))
	}
	if got := binary.BigEndian.Uint32(v); got != formatVersion {
		return fmt.Errorf("unknown store format version %d: this build reads version %d (was it written by a newer Herald?)", got, formatVersion)
	}
	return nil
}

func (p *Pebble) isEmpty() (bool, error) {
	it, err := p.db.NewIter(nil)
	if err != nil {
		return false, err
	}
	empty := !it.First()
	return empty, errors.Join(it.Error(), it.Close())
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
