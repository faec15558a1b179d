#!/usr/bin/env bash
# Every benchmark script at GPU-sized budgets, in one go, each under its own time limit so that one slow section
# cannot starve the others. The peers run where a GPU user would run them: SB3 and snntorch on CUDA (their
# environments on the host CPU), NumPy and Gymnasium loops on the host CPU.
#
#   bash scripts/bench_gpu.sh [OUT_DIR]        # default OUT_DIR: bench-gpu; about 9 minutes on one H200 (before
#                                              # the memory section, added 2026-12-01 and not yet run there)
#   SECTIONS="spiking-jelly spiking-minatar" bash scripts/bench_gpu.sh OUT_DIR   # only the sections named
#
# The limits below add up to about 22 minutes, more than one device call (10 min): split a session's run into
# calls with SECTIONS (the spiking ones first, for issue 16).
#
# Writes OUT_DIR/bench.log (everything printed) and one JSON file per script that can write one.
# Needs pip install -e ".[cuda,host,bench]" (or the same packages some other way) and a CUDA device.
set -u
out="${1:-bench-gpu}"
mkdir -p "$out"
log="$out/bench.log"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1  # progress bars would flood the log

section() {  # section NAME SECONDS COMMAND...: run COMMAND under a time limit, logging its output and its status
    local name=$1 limit=$2
    shift 2
    if [ -n "${SECTIONS:-}" ] && [[ " $SECTIONS " != *" $name "* ]]; then
        return 0
    fi
    echo "=== $name ($(date -u +%FT%TZ), limit ${limit}s): $*" | tee -a "$log"
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$log"
    echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s" | tee -a "$log"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import jax, flax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    echo "cpus $(nproc)"
} 2>&1 | tee -a "$log"

section envs 60 python3 scripts/bench_envs.py --sizes 1,1024,16384,262144
section taxi 90 python3 scripts/bench_taxi.py --episodes 2000 --seeds 1,64,1024,4096 \
    --hybrid-episodes 200 --hybrid-numpy-episodes 20 --hybrid-seeds 1,64,1024 --json "$out/taxi.json"
section agents 130 python3 scripts/bench_agents.py --steps 20480 --seeds 256 --json "$out/agents.json"
section snn 45 python3 scripts/bench_snn.py --batches 10 --repeats 3 --torch-device cuda --out "$out/snn.json"
section host 260 python3 scripts/bench_host.py --sections speed-breakout,speed-carracing --speed-steps 4000 \
    --carracing-steps 8192 --sb3-device cuda --torch-threads 4 --json "$out/host.json"
section memory 90 python3 scripts/bench_memory.py --num-seeds 16 --total-timesteps 1000000 --out-dir "$out/memory"
# spiking deep RL (added 2026-12-02, not yet run on a GPU): the 64-seed SpikingJelly ratio, the speed table, the
# CartPole and MinAtar targets (MinAtar: PQN and PPO, ANN and spiking, Breakout at the presets' 2M steps)
section spiking-jelly 120 python3 scripts/bench_spiking_rl.py jelly
section spiking-speed 90 python3 scripts/bench_spiking_rl.py speed
section spiking-pqn 120 python3 scripts/bench_spiking_rl.py pqn
section spiking-minatar 300 python3 scripts/bench_spiking_rl.py minatar --num-seeds 4
