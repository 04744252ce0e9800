package main

// Storage engines compiled in, beside the embedded one; a namespace selects one by name
// (timeseries.namespaces.NAME.engine). Each package registers itself from init.
import (
	_ "github.com/floodgate-dev/floodgate/timeseries/cassandraengine"
)
