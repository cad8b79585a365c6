package harness

import "go.uber.org/zap/zapcore"

// zapLevelT is the log level of managers started here: info, or debug with
// MESHPLANE_TEST_DEBUG set.
type zapLevelT = zapcore.Level
