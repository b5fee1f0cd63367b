export { mpiEnvironment, openMpi, MpiError, type Communicator, type MpiEnvironment } from "./mpi.ts";
export { allreduceGradients, broadcastParameters, sumOverRanks } from "./data-parallel.ts";
