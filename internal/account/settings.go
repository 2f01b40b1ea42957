package account

import "errors"

// Errors of Setting and SwapSetting, of both stores; callers test them with
// errors.Is.
var (
	// ErrNoSetting: Setting found no setting of that name.
	ErrNoSetting = errors.New("account: no such setting")
	// ErrSettingChanged: SwapSetting found another value than the one it
	// was to replace: another writer got there first.
	ErrSettingChanged = errors.New("account: the setting changed meanwhile")
)

// settingKey is the settings table's key of the setting called name: apart
// from the secrets ("secret/NAME").
func settingKey(name string) string { return "setting/" + name }
