// Package accesslog owns Floodgate's access log: the "access_log" outbound
// filter that writes one structured JSON line (log/slog) per completed
// request, with sampling of successes and every failure logged, and the
// long-lived Outputs service that owns the log files (shared by every
// config snapshot, reopened for rotation, closed at shutdown).
package accesslog
