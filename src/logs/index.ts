export { containerLogs } from "./container-logs.js";
export { listLogFiles, removeLogFiles } from "./files.js";
export { type LogRecord, parseRecord } from "./json-file.js";
export { LOG_LABELS, logOptionsFromLabels } from "./labels.js";
export { loggerBinary, loggerUri } from "./logger-binary.js";
export { type LogLine, type ReadLogsOptions, readLogs } from "./reader.js";
