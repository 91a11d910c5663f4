// Public API of the autopilot area: the leader's forecast → plan → apply loop and its admin verbs.
export { Autopilot, LEVELS, type AutopilotDeps, type AdminAnswer, type MoveStarter } from './autopilot.js';
export { AutopilotStore, type StoredStep, type ForecastRun } from './store.js';
export { readLoadHistory, type PartitionHistory, type HistoryRead } from './history.js';
export { forecastInWorker, forecastInProcess, forecastOffLoop } from './forecast-runner.js';
export { parseRestoreTable, RESTORE_SYNTAX, type RestoreRequest } from './restore.js';
export { DEFAULTS as AUTOPILOT_DEFAULTS, MODES, loadSettings, saveSetting, parseSetting, validateSettings, type AutopilotMode, type AutopilotSettings } from './settings.js';
export { AutopilotError } from './errors.js';
