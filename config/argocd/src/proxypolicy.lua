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
