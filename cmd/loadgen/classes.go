package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Class is one kind of request in the mix, chosen in proportion to Weight.
type Class struct {
	Name    string            `yaml:"name" json:"name"`
	Weight  int               `yaml:"weight" json:"weight"`
	Method  string            `yaml:"method" json:"method"`
	Path    string            `yaml:"path" json:"path"`
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
}

// classFile is the -classes file: YAML or JSON (JSON is valid YAML).
type classFile struct {
	Classes []Class `yaml:"classes"`
}

func loadClassFile(path string) ([]Class, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f classFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Classes) == 0 {
		return nil, fmt.Errorf("%s: no classes", path)
	}
	return f.Classes, nil
}

// parseClassFlag reads "name=crit weight=3 method=GET path=/api/play
// header=X-Request-Kind:user header=X-Device:tv".
func parseClassFlag(s string) (Class, error) {
	c := Class{Weight: 1, Method: http.MethodGet}
	for field := range strings.FieldsSeq(s) {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return c, fmt.Errorf("class %q: %q is not key=value", s, field)
		}
		switch k {
		case "name":
			c.Name = v
		case "weight":
			w, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("class %q: weight: %w", s, err)
			}
			c.Weight = w
		case "method":
			c.Method = v
		case "path":
			c.Path = v
		case "header":
			hk, hv, ok := strings.Cut(v, ":")
			if !ok {
				return c, fmt.Errorf("class %q: header %q is not Name:value", s, v)
			}
			if c.Headers == nil {
				c.Headers = map[string]string{}
			}
			c.Headers[hk] = hv
		default:
			return c, fmt.Errorf("class %q: unknown key %q (name, weight, method, path, header)", s, k)
		}
	}
	return c, nil
}

func validateClasses(cs []Class) error {
	if len(cs) == 0 {
		return errors.New("no request classes")
	}
	seen := map[string]bool{}
	var errs []error
	for i := range cs {
		c := &cs[i]
		if c.Method == "" {
			c.Method = http.MethodGet
		}
		c.Method = strings.ToUpper(c.Method)
		if c.Name == "" {
			c.Name = c.Path
		}
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("classes[%d]: name or path is required", i))
		case seen[c.Name]:
			errs = append(errs, fmt.Errorf("classes[%d]: duplicate name %q", i, c.Name))
		}
		seen[c.Name] = true
		if c.Weight < 1 || c.Weight > 1_000_000 {
			errs = append(errs, fmt.Errorf("classes[%d] (%s): weight must be 1..1000000, got %d", i, c.Name, c.Weight))
		}
		if !strings.HasPrefix(c.Path, "/") {
			errs = append(errs, fmt.Errorf("classes[%d] (%s): path must start with '/', got %q", i, c.Name, c.Path))
		}
	}
	return errors.Join(errs...)
}

// picker spreads classes by smooth weighted round-robin: exact proportions
// over every cycle of sum(weights) picks, interleaved rather than bunched,
// and deterministic, so runs are comparable.
type picker struct {
	weights []int
	current []int
	total   int
}

func newPicker(cs []Class) *picker {
	p := &picker{weights: make([]int, len(cs)), current: make([]int, len(cs))}
	for i, c := range cs {
		p.weights[i] = c.Weight
		p.total += c.Weight
	}
	return p
}

func (p *picker) next() int {
	best := 0
	for i, w := range p.weights {
		p.current[i] += w
		if p.current[i] > p.current[best] {
			best = i
		}
	}
	p.current[best] -= p.total
	return best
}
