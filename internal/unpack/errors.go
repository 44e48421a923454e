package unpack

import (
	"errors"
	"fmt"
)

// ErrUnsafeEntry is matched, through errors.Is, by the error of a layer tar
// holding an entry that would write outside the layer or through a link.
var ErrUnsafeEntry = errors.New("unsafe layer entry")

// UnsafeEntryError names the entry of a layer tar that was refused.
type UnsafeEntryError struct {
	// Name is the entry's name as the tar holds it.
	Name string
	// Reason says what is wrong with it.
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("layer entry %q refused: %s", e.Name, e.Reason)
}

// Is makes the error match ErrUnsafeEntry.
func (e *UnsafeEntryError) Is(target error) bool { return target == ErrUnsafeEntry }
