/**
 * hardneg's public API. The pipeline, stage by stage: read pairs -> load embeddings ->
 * build the candidate pool -> search -> filter false negatives -> select -> write shards.
 */
export { HardnegError, isHardnegError } from './errors.js'
export type { ErrorCode, ErrorPlace } from './errors.js'
export type { CellValue, EmbeddingBlock, EmbeddingMatrix, FalseNegativeCounts, FilteredCandidate, MinedRow, PairRecord } from './types.js'
export { readPairs, collectPairs, PRESETS } from './pairs/pairs.js'
export type { ReadPairsOptions, PairsFormat, PresetName, PairPreset, PresetCarry } from './pairs/pairs.js'
export { readCorpus } from './pairs/corpus.js'
export type { ReadCorpusOptions } from './pairs/corpus.js'
export {
  hashImages, inspectImage, imageDistance, isNearDuplicate, formatImageHash, parseImageHash, IMAGE_HASH, DEFAULT_IMAGE_DUP_DISTANCE, IMAGE_CACHE_FILE,
} from './images/images.js'
export type {
  HashImagesOptions, HashImagesResult, InspectImageOptions, ImageRef, ImageInfo, HashedImage, ImageHash, BadImage, BadImageReason, ImageCacheStatus,
} from './images/images.js'
export { readEmbeddingHeader, readNpyHeader, loadEmbeddings, loadEmbeddingMatrix, checkEmbeddingShape } from './embeddings/embeddings.js'
export type {
  EmbeddingHeader, EmbeddingFileOptions, EmbeddingFormat, EmbeddingDtype,
  NpyHeader, LoadEmbeddingsOptions, LoadEmbeddingMatrixOptions, ExpectedShape, EmbeddingSource, BadVector,
} from './embeddings/embeddings.js'
export { buildPool, writeExclusions, collectQueryPositives, exclusionsOf, normaliseText, EXCLUDE_WIDTH } from './mine/pool.js'
export type { CandidatePool, CorpusRecord, PoolEntry, PoolOptions, QueryPositives } from './mine/pool.js'
export { createDuplicateCheck } from './mine/duplicates.js'
export type { DuplicateCheck, DuplicateCheckOptions, DuplicateRule } from './mine/duplicates.js'
export { createExactSearcher, chooseExactKernel, INT8_MIN_OPS } from './mine/search/exact.js'
export type { ExactSearchOptions, ExactSearcher, ExactKernel, KernelChoice, RescoreCounts } from './mine/search/exact.js'
export { createHnswSearcher, dotRows } from './mine/search/hnsw.js'
export type { HnswSearchOptions, HnswSearcher } from './mine/search/hnsw.js'
export type { QueryBatch, SearchResult, RemovedCandidates, RemovedBy } from './mine/search/topk.js'
export { filterFalseNegatives, isFalseNegative, scoreCeiling, ceilingRule, checkRules, DEFAULT_RULES, RULE_NAMES } from './mine/filters.js'
export type { FalseNegativeRules, FalseNegativeRule, CandidateScores } from './mine/filters.js'
export { selectNegatives, candidatesNeeded, eligibleCount, checkSelectOptions } from './mine/select.js'
export type { SelectOptions, SelectOutcome } from './mine/select.js'
export { mineGroup } from './mine/negatives.js'
export type { MineGroupOptions, SearchMethod, HnswParams, MarginAnchor, QueryOutcome } from './mine/negatives.js'
export { writeShards, readShards } from './output/shards.js'
export type { WriteShardsOptions, ShardInfo, ShardRow, CarriedColumn, ShardColumn } from './output/shards.js'
export {
  writeJsonlShards, writeRowsAs, toUnimeV2, toFlagEmbedding, sentenceTransformersColumns, IMAGE_COLUMNS, MMEB_COLUMNS, OUTPUT_FORMATS, TEXT_ONLY_FORMATS,
} from './output/formats.js'
export type { OutputFormat, UnimeV2Record, FlagEmbeddingRecord, WriteJsonlShardsOptions } from './output/formats.js'
export { MiningStats } from './mine/stats.js'
export type { MineSummary, GroupCounts, ScoreSummary, SweepPoint } from './mine/stats.js'
export { readManifest, hashFile, MANIFEST_FILE, REPORT_FILE } from './output/manifest.js'
export type { Manifest, ManifestInput, ManifestShard, ManifestExactKernel } from './output/manifest.js'
export { mineNegatives, toolVersion, subsetName, AUTO_EXACT_MAX_FLOP } from './mine/mine.js'
export type { MineOptions, MineResult, ProgressEvent } from './mine/mine.js'
export { embedPairs, EMBED_MANIFEST_FILE, EMBED_OUTPUT_FILES } from './embed/embed.js'
export type { EmbedOptions, EmbedResult, EmbedSummary, EmbedProgressEvent, EmbedManifest, EmbedManifestOutput, EmbedManifestSkip, EmbedDtype } from './embed/embed.js'
export { HttpClient, HttpError, apiKeyFromEnv } from './http/client.js'
export {
  createRescorer, rescoreCandidates, decideRescore, isRescoreFalseNegative, checkRescoreRule, RESCORE_APIS, DEFAULT_JUDGE_PROMPT, DEFAULT_RESCORE_RULE,
} from './rescore/rescore.js'
export { rescoreRows } from './rescore/stage.js'
export type { RescoreStageOptions } from './rescore/stage.js'
export type {
  RescorerOptions, Rescorer, RescorerIdentity, RescoreStats, RescoreRequest, RescoreRule, RescoreDecision, RescoreApi, RescoreSide,
} from './rescore/rescore.js'
export type { HttpClientOptions, HttpRequest, HttpResponse, HttpStats, RetryEvent } from './http/client.js'
export { buildReportData, renderReport, writeReport } from './report/report.js'
export type {
  ReportOptions, ReportProgressEvent, ReportData, GroupReport, GroupScan, SampleRow, ShardLayout, Histogram, ReportThumbnail, WriteReportResult,
} from './report/report.js'
export { validateDataset, validateShards, formatReport, mergeReports, reportFails, countBySeverity, CHECKS } from './validate/validate.js'
export type {
  ValidateDatasetOptions, ValidateShardsOptions, ValidateCommonOptions, ValidationReport, Finding, FindingCode, Severity,
  CheckGroup, CheckResult, CheckSpec, FormatReportOptions, ReportFormat,
} from './validate/validate.js'
export { detectWorker, formatIndexList, parseIndexList } from './scale/engine.js'
export type { WorkerSpec, WorkerFlags, WorkerEngine } from './scale/engine.js'
export { mineWorkerPart } from './scale/worker.js'
export type { WorkerResult } from './scale/worker.js'
export { mergeParts, readPartsStatus, describeIncomplete } from './scale/merge.js'
export type { MergeOptions, MergeResult, PartsStatus } from './scale/merge.js'
