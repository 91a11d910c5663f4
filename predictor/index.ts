// Public API of the predictor: forecasts with calibrated quantiles, events, growth, load score, CLI core.

export type { Series, Forecast, ForecastStep, Forecaster, FitContext } from './types.js';
export { DEFAULT_QUANTILES, quantileKey } from './types.js';
export {
  forecastMany, forecastStatistical, MODEL_CHOICES, MAX_CALIBRATION_STEPS, MIN_HISTORY,
  type ModelChoice, type PredictOptions, type PredictResult, type SeriesInput, type LstmOptions,
} from './pipeline.js';
export { SeasonalNaiveForecaster, HoltWintersForecaster, StatisticalEnsembleForecaster } from './forecasters.js';
export { detectSeasons, type SeasonReport } from './seasonality.js';
export { calibrate, type Calibration } from './conformal.js';
export {
  parseScheduleEvent, parseDuration, parseTimestamp, fetchEventFeed, learnMultipliers, toScheduledEvent,
  type ScheduledEvent, type LearnedMultiplier,
} from './events.js';
export { loadScore, loadScoreSeries, type LoadCounters } from './load-score.js';
export {
  forecastSize, recommend, type SizeForecast, type PartitionLoad, type PartitionSize, type Thresholds,
  type Recommendation, type TableRecommendation,
} from './growth.js';
export { seedForecast, type RestoreSeed } from './seed.js';
export { trainInWorker, predictInWorker, type WorkerResult, type WorkerOptions } from './worker-client.js';
export { DEFAULT_LSTM_CONFIG, type LstmConfig, type LstmSeriesInput } from './lstm-data.js';
export type { SavedLstm } from './lstm-net.js';
export { saveModelValue as saveModel, loadModelValue as loadModel } from './model-store.js';
export { runForecastCli } from './cli.js';
export { parseCsv, type CsvTable } from './csv.js';
export {
  PredictorError, EventSyntaxError, CsvInputError, UsageError, EventFeedError, ModelFormatError,
} from './errors.js';
export { DutyCycle, MIN_DUTY, dutyForUtilization, pacer } from './duty-cycle.js';
