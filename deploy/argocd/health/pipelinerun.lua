-- Argo CD health check of smepulse.io/PipelineRun.
-- Install it in argocd-cm under resource.customizations.health.smepulse.io_PipelineRun
-- (see deploy/argocd/README.md). Argo CD runs it with gopher-lua (Lua 5.1): `obj` is the
-- live object; the script returns {status = ..., message = ...}.
--
--   Succeeded                                   -> Healthy
--   Pending, Running (or no status yet)         -> Progressing
--   Failed (a stage failed, or TimedOut)        -> Degraded
--   Cancelled                                   -> Degraded (it did not do its job)
--   spec.suspend while not finished             -> Suspended
--   status older than the spec (observedGeneration < metadata.generation)
--                                               -> Progressing (the operator has not yet acted
--                                                  on the change, e.g. a cancel just set)
local hs = {}

local function succeeded_condition(status)
  if status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Succeeded" then
      return condition
    end
  end
  return nil
end

local function describe(status, fallback)
  local condition = succeeded_condition(status)
  local parts = {}
  if condition ~= nil and condition.reason ~= nil and condition.reason ~= "" then
    table.insert(parts, condition.reason)
  end
  local message = status.message
  if (message == nil or message == "") and condition ~= nil then
    message = condition.message
  end
  if message ~= nil and message ~= "" then
    table.insert(parts, message)
  end
  if #parts == 0 then
    return fallback
  end
  return table.concat(parts, ": ")
end

local spec = obj.spec or {}
local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  if spec.suspend == true then
    hs.status = "Suspended"
    hs.message = "Suspended before it started (spec.suspend)"
    return hs
  end
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to start the run"
  return hs
end

-- A status written for an older spec says nothing about the current one: a run just told to
-- cancel still shows Running, a finished run whose spec changed is being looked at again.
local generation = tonumber((obj.metadata or {}).generation)
local observed = tonumber(status.observedGeneration)
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. string.format("%d", generation)
    .. " (status is of generation " .. string.format("%d", observed) .. ")"
  return hs
end

local phase = status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = describe(status, "Succeeded")
  return hs
end
if phase == "Failed" then
  local failed = ""
  if status.failedStage ~= nil and status.failedStage ~= "" then
    failed = " (stage " .. status.failedStage .. ")"
  end
  hs.status = "Degraded"
  hs.message = describe(status, "Failed") .. failed
  return hs
end
if phase == "Cancelled" then
  hs.status = "Degraded"
  hs.message = describe(status, "Cancelled")
  return hs
end

-- Pending or Running from here on: not finished.
if spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended (spec.suspend): no new stage starts until it is set back to false"
  return hs
end
hs.status = "Progressing"
if spec.cancel == true then
  hs.message = "Cancelling: stopping running Jobs, then the finally stages"
elseif status.currentStage ~= nil and status.currentStage ~= "" then
  hs.message = phase .. ": stage " .. status.currentStage
else
  hs.message = phase
end
return hs
