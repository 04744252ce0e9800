// Package custom is where operators drop their own filters. The gateway
// already imports this package, so a new file here that registers a filter
// from init() is available by name in YAML with no other change:
//
//	routes:
//	  - name: api
//	    filters:
//	      - name: my_filter
//	        options: {...}
//
// See stamp.go for a complete example and README.md ("Writing a filter").
// Larger filters can live in their own package, added with one blank import
// in cmd/gateway/filters.go.
package custom
