// The per-series Forecaster classes (fit, then forecast with calibrated quantiles) over the pipeline.

import type { ScheduledEvent } from './events.js';
import { forecastStatistical, type ModelChoice } from './pipeline.js';
import { DEFAULT_QUANTILES, type FitContext, type Forecast, type Forecaster, type Series } from './types.js';

/**
 * A statistical forecaster: `fit` remembers the series and context, `forecast` runs the backtest,
 * calibration and forecast for the asked horizon (the backtest depends on it, and it is cheap).
 */
class StatisticalForecaster implements Forecaster {
  private series?: Series;
  private ctx: FitContext = {};
  constructor(readonly name: string, private readonly model: ModelChoice, private readonly events: ScheduledEvent[] = []) {}

  fit(series: Series, ctx: FitContext = {}): void {
    this.series = series;
    this.ctx = ctx;
  }

  forecast(h: number, quantiles: number[] = [...DEFAULT_QUANTILES]): Forecast {
    if (!this.series) throw new Error(`${this.name}: forecast() before fit()`);
    return forecastStatistical(
      { name: this.name, series: this.series, ...(this.ctx.seasons ? { seasons: this.ctx.seasons } : {}) },
      { horizon: h, quantiles, model: this.model, events: this.events, ...(this.ctx.seed !== undefined ? { seed: this.ctx.seed } : {}) },
    );
  }
}

/** Seasonal naive: the better (by backtest) of the daily and the weekly repeat, or the last value. */
export class SeasonalNaiveForecaster extends StatisticalForecaster {
  constructor(events?: ScheduledEvent[]) { super('naive', 'naive', events); }
}

/** Holt-Winters with up to two detected seasons, damped trend and AR(1) errors. */
export class HoltWintersForecaster extends StatisticalForecaster {
  constructor(events?: ScheduledEvent[]) { super('hw', 'hw', events); }
}

/** Ensemble of the statistical models (for the LSTM too, use forecastMany: it needs a worker). */
export class StatisticalEnsembleForecaster extends StatisticalForecaster {
  constructor(events?: ScheduledEvent[]) { super('ensemble', 'ensemble', events); }
}
