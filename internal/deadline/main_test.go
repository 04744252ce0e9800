package deadline

import (
	"testing"

	"github.com/floodgate-dev/floodgate/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
