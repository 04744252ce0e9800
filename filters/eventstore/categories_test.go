package eventstore

import (
	"github.com/floodgate-dev/floodgate/timeseries/httpapi"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
)

func TestCategoryFor(t *testing.T) {
	for status, want := range map[int]filters.Category{
		200: filters.CategorySuccess,
		202: filters.CategorySuccess,
		400: filters.CategoryClientError,
		404: filters.CategoryClientError,
		413: filters.CategoryRequestTooLarge,
		422: filters.CategoryClientError,
		499: filters.CategoryClientError,
		500: CategoryStoreError,
		503: CategoryStoreBusy,
		504: filters.CategoryOriginTimeout,
	} {
		if got := categoryFor(status); got != want {
			t.Errorf("categoryFor(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		time.Millisecond:        1,
		time.Second:             1,
		1500 * time.Millisecond: 2,
		30 * time.Second:        30,
	} {
		if got := httpapi.RetryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
