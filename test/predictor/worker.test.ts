// Tests LSTM training in a worker thread, and that a saved-then-loaded model forecasts identically.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LSTM_CONFIG, type LstmConfig, type LstmSeriesInput } from '../../predictor/lstm-data.js';
import { loadModelValue, saveModelValue } from '../../predictor/model-store.js';
import { predictInWorker, trainInWorker } from '../../predictor/worker-client.js';
import { forecastMany } from '../../predictor/pipeline.js';
import { ModelFormatError } from '../../predictor/errors.js';
import { HOUR, T0, dailyWeekly, series } from './helpers.js';

const cfg: LstmConfig = { ...DEFAULT_LSTM_CONFIG, horizon: 12, epochs: 2, samples: 256, units: 8, hidden: 16, seed: 3 };

function inputs(): LstmSeriesInput[] {
  return [1, 2, 3].map((s) => {
    const y = dailyWeekly(24 * 7 * 4, s, 0.1, 50 * s);
    return { y, start: T0, stepMs: HOUR, seasons: [24, 168], trainEnd: y.length - 48, origins: [y.length - 48, y.length - 24, y.length] };
  });
}

test('training in a worker returns a JSON-storable model and forecasts; reloading reproduces them exactly', async () => {
  const data = inputs();
  const trained = await trainInWorker(data, cfg);
  assert.equal(trained.predictions.length, 3);
  assert.equal(trained.predictions[0]!.length, 3);
  assert.equal(trained.predictions[0]![0]!.length, 12);
  assert.ok(trained.predictions.flat().every((f) => f.every((v) => Number.isFinite(v) && v >= 0)));
  // Through the catalog: jsonb value and bytea bytes both load.
  const asJson = JSON.parse(JSON.stringify(saveModelValue(trained.saved)));
  const asBytes = saveModelValue(trained.saved, 'bytes');
  for (const stored of [asJson, asBytes]) {
    const again = await predictInWorker(stored, data);
    assert.deepEqual(again.predictions.map((s) => s.map((f) => Array.from(f))), trained.predictions.map((s) => s.map((f) => Array.from(f))));
  }
  // Same seed, same data: same model.
  const twice = await trainInWorker(data, cfg, { predict: false });
  assert.deepEqual(twice.saved.weights, trained.saved.weights);
  assert.throws(() => loadModelValue('{"format":"other"}'), ModelFormatError);
});

test('forecastMany with a pretrained model does not retrain and uses it', async () => {
  const ys = [1, 2].map((s) => dailyWeekly(24 * 7 * 5, s + 10, 0.1, 40));
  const mk = (): { name: string; series: ReturnType<typeof series> }[] => ys.map((y, i) => ({ name: `p${i}`, series: series(y) }));
  const first = await forecastMany(mk(), { horizon: 12, lstm: { epochs: 2, samples: 256, units: 8, hidden: 16 }, quantiles: [0.5] });
  assert.ok(first.lstmModel, 'trained a model');
  const second = await forecastMany(mk(), { horizon: 12, lstm: { pretrained: first.lstmModel }, quantiles: [0.5] });
  assert.deepEqual(second.lstmModel!.weights, first.lstmModel!.weights);
  assert.deepEqual(second.forecasts['p0']!.components!['lstm'], first.forecasts['p0']!.components!['lstm']);
  const bad = await forecastMany(mk(), { horizon: 12, lstm: { pretrained: { format: 'nope' } }, quantiles: [0.5] });
  assert.ok(bad.forecasts['p0']!.notes.some((n) => /LSTM unavailable/.test(n)));
  assert.ok(bad.forecasts['p0']!.steps.length === 12);
});
