package pebblekv

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

// Get reads the value at k and decodes it while Pebble's buffer is still
// valid; ok is false if there is none. A decode error comes back with ok
// false and whatever decode returned.
func Get[T any](r pebble.Reader, k []byte, decode func([]byte) (T, error)) (v T, ok bool, err error) {
	raw, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return v, false, nil
	}
	if err != nil {
		return v, false, err
	}
	v, err = decode(raw)
	if cerr := closer.Close(); err == nil {
		err = cerr
	}
	return v, err == nil, err
}

// Has reports whether k is stored.
func Has(r pebble.Reader, k []byte) (bool, error) {
	_, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}

// Scan calls fn for each key starting with prefix, in order from the first
// key >= from (from the first key if from is nil), while fn returns true
// and no error, and returns fn's error as it is. k and v are valid only
// until fn returns.
func Scan(r pebble.Reader, prefix, from []byte, fn func(k, v []byte) (more bool, err error)) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: PrefixEnd(prefix)})
	if err != nil {
		return err
	}
	var valid bool
	if from != nil {
		valid = it.SeekGE(from)
	} else {
		valid = it.First()
	}
	for ; valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		more := false
		if err == nil {
			more, err = fn(it.Key(), v)
		}
		if err != nil || !more {
			if cerr := it.Close(); err == nil {
				err = cerr
			}
			return err
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// Count is the number of keys starting with prefix, or limit if there are
// at least that many.
func Count(r pebble.Reader, prefix []byte, limit int) (int, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: PrefixEnd(prefix)})
	if err != nil {
		return 0, err
	}
	n := 0
	for valid := it.First(); valid && n < limit; valid = it.Next() {
		n++
	}
	return n, errors.Join(it.Error(), it.Close())
}
