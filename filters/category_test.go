package filters

import (
	"strings"
	"testing"
)

func TestCategoryGroups(t *testing.T) {
	for cat, want := range map[Category]Group{
		CategorySuccess:            GroupSuccess,
		CategoryNoRoute:            GroupClient,
		CategoryClientClosed:       GroupClient,
		CategoryUpgradeRefused:     GroupClient,
		CategoryRequestTooLarge:    GroupClient,
		CategoryOriginConnectError: GroupOrigin,
		CategoryOrigin5xx:          GroupOrigin,
		CategoryNoHealthyInstances: GroupOrigin,
		CategoryOriginConcurrency:  GroupLocal,
		CategoryShedOrigin:         GroupLocal,
		CategoryRateLimited:        GroupLocal,
		CategoryFilterTimeout:      GroupLocal,
		Category("never_declared"): GroupLocal,
	} {
		if got := cat.Group(); got != want {
			t.Errorf("%s: group %s, want %s", cat, got, want)
		}
		if cat.OriginFault() != (want == GroupOrigin) {
			t.Errorf("%s: OriginFault() = %v", cat, cat.OriginFault())
		}
	}
}

func TestNewCategoryRejectsTwoGroups(t *testing.T) {
	NewCategory("test_twice", GroupClient)
	NewCategory("test_twice", GroupClient) // the same declaration again is fine
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "two groups") {
			t.Errorf("recovered %v", r)
		}
	}()
	NewCategory("test_twice", GroupOrigin)
}
