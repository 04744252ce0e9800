package main

// Filter packages register themselves by name from init(); importing them
// here is what makes them available to YAML. Operators' own filters go in
// filters/custom (already imported) or in a package added below.
import (
	_ "github.com/floodgate-dev/floodgate/filters/custom"
)
