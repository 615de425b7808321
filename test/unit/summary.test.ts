import * as assert from 'node:assert/strict';
import { indexJsonl } from '../../src/core/io/jsonl';
import { summarizeTrajectory, trajectorySummarizer } from '../../src/core/trajectories/summary';
import { Trajectory } from '../../src/core/schema/trajectory';
import { FIXTURE_RUN } from './helpers';

describe('trajectory summaries', () => {
  it('groups the fixture run by where the ground-truth page ranked', async () => {
    const index = await indexJsonl(FIXTURE_RUN, trajectorySummarizer);
    const byOutcome = (o: string) => index.summaries.filter((s) => s.outcome === o).map((s) => s.questionId);
    assert.deepEqual(byOutcome('rank1'), [
      'financebench_id_03029',
      'financebench_id_04672',
      'financebench_id_00517',
      'financebench_id_00685',
    ]);
    assert.deepEqual(byOutcome('lower'), ['financebench_id_00799']);
    // "Maximum iterations reached" is running out of steps, not an error.
    assert.deepEqual(byOutcome('never'), ['financebench_id_01079', 'financebench_id_01930']);
    assert.deepEqual(byOutcome('errored'), ['financebench_id_02416']);
    const second = index.summaries[1];
    assert.equal(second.bestRank, 1);
    assert.equal(second.bestRankScore, 1);
    assert.equal(second.steps, 3);
    assert.equal(second.searches, 2);
    assert.deepEqual(second.queries, [
      '3M balance sheet property plant equipment net',
      '"property, plant and equipment - net" 2018',
    ]);
    assert.deepEqual(second.groundTruth, [{ file: '3M_2018_10K.pdf', page: 58 }]);
  });

  it('recomputes the ground-truth rank from results when the collector logged none', () => {
    const t = Trajectory.parse({
      id: 'traj_1',
      question: 'q',
      ground_truth: { answers: null, answer_locations: 'b.pdf:2', category: null },
      iterations: [
        {
          step: 1,
          action: 'search',
          query: 'x',
          results: [
            { file: 'a.pdf', page_number: 1, rank: 1 },
            { file: 'b.pdf', page_number: 2, rank: 2 },
          ],
        },
      ],
    });
    const s = summarizeTrajectory(t);
    assert.equal(s.bestRank, 2);
    assert.equal(s.outcome, 'lower');
  });

  it('marks an unanswered run that hit an API error as errored', () => {
    const s = summarizeTrajectory(
      Trajectory.parse({ id: 't', question: 'q', iterations: [], error: 'Connection error.' }),
    );
    assert.equal(s.outcome, 'errored');
    assert.equal(s.bestRank, null);
  });
});
