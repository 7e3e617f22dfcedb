package pebble

import "github.com/guildhall/guildhall/internal/pebblekv"

// prefixEnd is the upper bound of the scans of this package, which the key
// tests check against its key layout.
var prefixEnd = pebblekv.PrefixEnd
