if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Reconciliation suspended (spec.suspend). " .. hs.message
  return hs
end
local up = obj.status ~= nil and obj.status.upgrade or nil
if up ~= nil and up.phase ~= nil and up.phase ~= "Completed" then
  local progress = "Upgrade " .. (up.fromVersion or "?") .. " -> " .. (up.toVersion or "?") .. " " .. up.phase
  if up.totalNamespaces ~= nil and up.totalNamespaces > 0 then
    progress = progress .. ": " .. (up.migratedNamespaces or 0) .. "/" .. up.totalNamespaces .. " namespaces migrated"
  end
  if up.phase == "Failed" then
    hs.status = "Degraded"
  elseif up.phase == "Paused" then
    hs.status = "Suspended"
  elseif hs.status == "Healthy" then
    hs.status = "Progressing"
  end
  hs.message = progress .. ". " .. hs.message
end
return hs
