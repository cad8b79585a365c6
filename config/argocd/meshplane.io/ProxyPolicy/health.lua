-- Meshplane health check for Argo CD (resource.customizations.health.meshplane.io_<Kind>).
-- The part down to "kind-specific" is the same for every kind and follows
-- kstatus: deleting or an unobserved generation -> Progressing, Reconciling=True
-- -> Progressing, Stalled=True -> Degraded, Ready=True -> Healthy, Ready=False or
-- Unknown -> Progressing. Source: config/argocd in github.com/meshplane/meshplane.
local hs = {}

local function condition(t)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == t then
        return c
      end
    end
  end
  return nil
end

local function text(c)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return c.reason or ""
end

local function kstatus()
  if obj.metadata.deletionTimestamp ~= nil then
    return "Progressing", "Being deleted"
  end
  if obj.status == nil or obj.status.observedGeneration == nil then
    return "Progressing", "Waiting for Meshplane to reconcile"
  end
  if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
    return "Progressing", "Generation " .. obj.metadata.generation .. " not observed yet (observed " .. obj.status.observedGeneration .. ")"
  end
  if obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == "Reconciling" and c.status == "True" then
        return "Progressing", text(c)
      end
      if c.type == "Stalled" and c.status == "True" then
        return "Degraded", text(c)
      end
    end
  end
  local ready = condition("Ready")
  if ready ~= nil then
    if ready.status == "True" then
      return "Healthy", text(ready)
    end
    return "Progressing", text(ready)
  end
  return "Healthy", "No conditions reported"
end

hs.status, hs.message = kstatus()

-- A BreakGlass covers this object: say so, whatever the status.
local bg = condition("BreakGlassActive")
if bg ~= nil and bg.status == "True" then
  hs.message = "Break glass active: " .. text(bg) .. ". " .. hs.message
end

-- kind-specific
if obj.spec ~= nil and obj.spec.rollout ~= nil and obj.spec.rollout.paused == true and obj.status ~= nil and obj.status.workloads ~= nil then
  local pending = 0
  for _, w in ipairs(obj.status.workloads) do
    if w.state == "Pending" then
      pending = pending + 1
    end
  end
  if pending > 0 then
    hs.status = "Suspended"
    hs.message = "Rollout paused (spec.rollout.paused), " .. pending .. " workload(s) pending. " .. hs.message
    return hs
  end
end
if hs.status == "Healthy" and obj.status ~= nil and obj.status.provider ~= nil and obj.status.provider ~= "" then
  hs.message = "Proxy settings on " .. obj.status.provider .. ". " .. hs.message
end
return hs
