import type { CurationStore } from './curation/store';
import type { DatasetsProvider, FailedSearchesProvider } from './curation/views';
import type { EvaluationsProvider } from './evaluations';
import type { JobsProvider } from './jobs/jobsView';
import type { ComparePanel } from './panels/comparePanel';
import type { InspectorPanel } from './panels/inspectorPanel';
import type { TrainingMonitorPanel } from './panels/monitorPanel';
import type { PairEditorPanel } from './panels/pairEditorPanel';
import type { SearchService } from './searchService';
import type { TrajectoryStore } from './trajectories/store';
import type { TrajectoriesTreeProvider } from './trajectories/tree';

/** What the extension hands to its integration tests (and to other extensions). */
export interface DragStudioApi {
  trajectories: TrajectoriesTreeProvider;
  store: TrajectoryStore;
  /** The `drag serve` child of the first workspace folder (started on first search). */
  searchService(): Promise<SearchService>;
  curation: CurationStore | null;
  failedSearches: FailedSearchesProvider | null;
  datasets: DatasetsProvider | null;
  /** The inspector panel on screen, if any. */
  inspector(): InspectorPanel | undefined;
  pairEditor(): PairEditorPanel | undefined;
  evaluations: EvaluationsProvider | null;
  compare(): ComparePanel | undefined;
  jobs: JobsProvider | null;
  /** The Training Monitor of a job, if open. */
  monitor(id: string): TrainingMonitorPanel | undefined;
}
