// Package fuzz holds the gateway's fuzz targets that need a whole gateway:
// request framing and admission through a real fasthttp server on
// loopback, in front of a strict origin. run.sh fuzzes every target in the
// repository for a given time; the seed corpora are checked in under each
// package's testdata/fuzz.
package fuzz
