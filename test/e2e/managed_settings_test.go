package e2e

import (
	"strings"
	"testing"
)

// TestManagedChangeSetting changes a setting of the plugin that dockerd
// uses, the way the README says: force-disable it, set, enable. dockerd
// goes on with the restarted plugin, which serves from its saved Init.
func TestManagedChangeSetting(t *testing.T) {
	m, _ := startThinManaged(t, false)
	checkThinRuns(t, m)

	m.MustDocker(t, "plugin", "disable", "--force", m.PluginName)
	m.MustDocker(t, "plugin", "set", m.PluginName, "LOG_LEVEL=debug")
	m.MustDocker(t, "plugin", "enable", m.PluginName)

	logBefore := len(m.PluginLog())
	checkThinRuns(t, m)
	log := strings.Join(m.PluginLog()[logBefore:], "\n")
	if !strings.Contains(log, "level=debug") {
		t.Errorf("no debug lines from the plugin after LOG_LEVEL=debug:\n%s", log)
	}
	checkNoHomeMounts(t, m, "after the run")
}
